//! PostgreSQL stores for cano.
