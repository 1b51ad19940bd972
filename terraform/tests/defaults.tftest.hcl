mock_provider "aws" {
  source = "./tests/mocks"
}

variables {
  lambda_zip_dir = "./tests/fixtures/lambda"
}

run "plan_defaults" {
  command = plan
}

run "apply_defaults" {
  command = apply
}
