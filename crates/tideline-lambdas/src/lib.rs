//! tideline-lambdas
