//! Dedicated repositories for the system tables.
