//! tideline-embedded
