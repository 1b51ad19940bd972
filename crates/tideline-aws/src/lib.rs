//! tideline-aws
