# The root module with every default, planned and applied against the mocked
# provider (tests/mocks): the stack a first `terraform apply` creates.

mock_provider "aws" {
  source = "./tests/mocks"
}

variables {
  lambda_zip_dir = "./tests/fixtures/lambda"
}

run "plan_defaults" {
  command = plan

  assert {
    condition     = output.lambda_architecture == "arm64"
    error_message = "functions default to arm64, what scripts/build-lambdas.sh builds by default"
  }
}

run "apply_defaults" {
  command = apply

  assert {
    # The mocked stage URL ends in "/" as the real one does: callers append
    # "/entities/..." and must not get "//".
    condition     = !endswith(output.api_url, "/")
    error_message = "api_url must not end in a slash"
  }

  assert {
    # The database docs/lake.md's queries name.
    condition     = output.lake_glue_database == "tideline_lake"
    error_message = "the lake's Glue database must be tideline_lake by default"
  }

  assert {
    condition     = output.data_lake_bucket != ""
    error_message = "the data lake bucket must be named"
  }
}
