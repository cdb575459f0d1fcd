//! One-pass PII scanner (e-mail, phone, card with Luhn, IBAN, SSN, IP, secrets) and redaction.
//!
//! Pure: placeholder until the governance work lands.
