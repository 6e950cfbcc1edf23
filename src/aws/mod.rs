//! AWS clients
