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

# low_latency: no processor buffering interval, no emitter batching window,
# whatever the two variables say (docs/realtime.md, "Latency budget").
run "low_latency" {
  command = apply

  variables {
    low_latency                                = true
    firehose_processor_buffer_interval_seconds = 120
    emitter_batching_window_seconds            = 5
  }

  assert {
    condition     = module.ingest.processor_parameters.BufferIntervalInSeconds == "0"
    error_message = "low_latency: Firehose invokes the transformer with no buffering interval"
  }

  assert {
    condition     = aws_lambda_event_source_mapping.stream_to_emitter.maximum_batching_window_in_seconds == 0
    error_message = "low_latency: the stream starts the emitter with no batching window"
  }
}

run "standard_latency" {
  command = apply

  assert {
    condition     = module.ingest.processor_parameters.BufferIntervalInSeconds == "60"
    error_message = "by default Firehose fills a transformer invocation for up to 60 s"
  }

  assert {
    condition     = aws_lambda_event_source_mapping.stream_to_emitter.maximum_batching_window_in_seconds == 1
    error_message = "by default the stream waits up to 1 s to fill an emitter batch"
  }
}
