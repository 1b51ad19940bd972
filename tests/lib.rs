//! End-to-end tests of Tideline: local mode and the AWS chain against moto.
