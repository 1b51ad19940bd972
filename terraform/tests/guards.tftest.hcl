# What must stop a plan: each run breaks one guard on purpose and expects
# exactly that guard to fail.

mock_provider "aws" {
  source = "./tests/mocks"
}

variables {
  lambda_zip_dir = "./tests/fixtures/lambda"
}

run "matching_architecture_plans" {
  command = plan

  module {
    source = "./modules/function"
  }

  variables {
    name         = "tideline-guard"
    zip_path     = "./tests/fixtures/lambda/transformer/bootstrap.zip"
    architecture = "arm64"
    kms_key_arn  = "arn:aws:kms:ap-southeast-4:123456789012:key/11111111-2222-3333-4444-555555555555"
  }
}

run "architecture_mismatch_fails_at_plan" {
  # An arm64 zip (tests/fixtures/lambda/*/architecture) deployed as x86_64.
  command = plan

  module {
    source = "./modules/function"
  }

  variables {
    name         = "tideline-guard"
    zip_path     = "./tests/fixtures/lambda/transformer/bootstrap.zip"
    architecture = "x86_64"
    kms_key_arn  = "arn:aws:kms:ap-southeast-4:123456789012:key/11111111-2222-3333-4444-555555555555"
  }

  expect_failures = [aws_lambda_function.this]
}

run "zip_without_architecture_fails_at_plan" {
  # A zip built by hand, without scripts/build-lambdas.sh: the architecture
  # is unknown, so the plan stops rather than guess.
  command = plan

  module {
    source = "./modules/function"
  }

  variables {
    name         = "tideline-guard"
    zip_path     = "./tests/fixtures/no-architecture/bootstrap.zip"
    architecture = "arm64"
    kms_key_arn  = "arn:aws:kms:ap-southeast-4:123456789012:key/11111111-2222-3333-4444-555555555555"
  }

  expect_failures = [aws_lambda_function.this]
}

run "longest_name_prefix_fits_the_longest_region" {
  # 23 characters; the mocked region is ap-southeast-4 (tests/mocks).
  command = plan

  variables {
    name_prefix = "abcdefghijklmnopqrstuvw"
  }
}

run "name_prefix_too_long_for_the_lake_bucket" {
  command = plan

  variables {
    name_prefix = "abcdefghijklmnopqrstuvwx"
  }

  expect_failures = [var.name_prefix]
}

run "name_prefix_default_is_reserved" {
  command = plan

  variables {
    name_prefix = "default"
  }

  expect_failures = [var.name_prefix]
}

run "name_prefix_aws_is_reserved" {
  command = plan

  variables {
    name_prefix = "aws-pipeline"
  }

  expect_failures = [var.name_prefix]
}

run "storer_reserved_below_maximum_concurrency" {
  # Reserved 5 < the event source's maximum concurrency of 10: messages would
  # be throttled back to the queue and dead-lettered without a failure.
  command = plan

  variables {
    event_storer = { reserved_concurrency = 5 }
  }

  expect_failures = [var.event_storer]
}

run "storer_reserved_at_maximum_concurrency_plans" {
  command = plan

  variables {
    event_storer               = { reserved_concurrency = 10 }
    transformer                = { reserved_concurrency = 20 }
    event_emitter              = { reserved_concurrency = 4 }
    storer_maximum_concurrency = 10
  }
}

run "schema_registry_registers_the_draft4_schema" {
  command = plan

  module {
    source = "./modules/bus"
  }

  variables {
    name                   = "tideline"
    event_source           = "tideline"
    kms_key_arn            = "arn:aws:kms:ap-southeast-4:123456789012:key/11111111-2222-3333-4444-555555555555"
    enable_schema_registry = true
    schema_file            = "../schemas/integration-event.draft4.schema.json"
  }

  assert {
    condition     = length(aws_schemas_schema.integration_event) == 1
    error_message = "the Draft 4 schema should be registered"
  }
}

run "schema_registry_refuses_a_2020_12_schema" {
  # The registry type is JSONSchemaDraft4: the 2020-12 schema must not be
  # registered as if it were Draft 4.
  command = plan

  module {
    source = "./modules/bus"
  }

  variables {
    name                   = "tideline"
    event_source           = "tideline"
    kms_key_arn            = "arn:aws:kms:ap-southeast-4:123456789012:key/11111111-2222-3333-4444-555555555555"
    enable_schema_registry = true
    schema_file            = "../schemas/integration-event.schema.json"
  }

  expect_failures = [aws_schemas_schema.integration_event]
}
