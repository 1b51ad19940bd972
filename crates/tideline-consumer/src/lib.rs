//! tideline-consumer
