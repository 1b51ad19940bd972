# The root module's main variants, each planned and applied against the
# mocked provider (tests/mocks): x86_64 functions, JWT authorization of the
# query API, the schema registry on, no dashboard.

mock_provider "aws" {
  source = "./tests/mocks"
}

variables {
  lambda_zip_dir = "./tests/fixtures/lambda"
}

run "x86_64" {
  command = apply

  variables {
    lambda_architecture = "x86_64"
    lambda_zip_dir      = "./tests/fixtures/lambda-x86_64"
  }

  assert {
    condition     = output.lambda_architecture == "x86_64"
    error_message = "the stack should deploy x86_64 functions"
  }
}

run "jwt_authorization" {
  command = apply

  variables {
    api_authorization = "JWT"
    api_jwt_issuer    = "https://cognito-idp.ap-southeast-4.amazonaws.com/ap-southeast-4_example"
    api_jwt_audience  = ["tideline-query-client"]
  }
}

run "schema_registry_on" {
  command = apply

  variables {
    enable_schema_registry = true
  }
}

run "no_dashboard" {
  command = apply

  variables {
    create_dashboard = false
  }
}
