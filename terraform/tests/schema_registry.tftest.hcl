# Ingest schema validation on AWS (issue 13, part 2): the registry travels in
# the transformer's zip (scripts/build-lambdas.sh) and the transformer is told
# where, under /var/task; off by default.

mock_provider "aws" {
  source = "./tests/mocks"
}

variables {
  lambda_zip_dir = "./tests/fixtures/lambda"
}

run "validation_is_off_by_default" {
  command = plan

  assert {
    condition     = !contains(keys(module.transformer.environment), "TIDELINE_SCHEMA_REGISTRY")
    error_message = "no schema registry unless transformer_schema_registry is set"
  }
}

run "the_transformer_reads_the_registry_from_its_zip" {
  command = plan

  variables {
    transformer_schema_registry = "schemas/registry.json"
  }

  assert {
    condition     = module.transformer.environment["TIDELINE_SCHEMA_REGISTRY"] == "/var/task/schemas/registry.json"
    error_message = "the registry path is relative to the zip, which Lambda unpacks under /var/task"
  }
}

run "an_absolute_or_escaping_path_is_refused" {
  command = plan

  variables {
    transformer_schema_registry = "../registry.json"
  }

  expect_failures = [var.transformer_schema_registry]
}
