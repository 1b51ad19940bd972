mock_provider "aws" {
  source = "../../tests/mocks"
}

variables {
  lambda_zip_dir = "../../tests/fixtures/lambda"
}

run "plan_as_shipped" {
  command = plan
}

run "apply_as_shipped" {
  command = apply
}
