# The realtime module (docs/realtime.md), planned and applied against the
# mocked provider: off by default; on, a WebSocket API whose $connect alone
# takes the token authorizer, a connections table with a TTL, a relay bound
# to the bus by a rule, the server-side routes on the HTTP API, and roles
# that manage connections on this API's stage only.

mock_provider "aws" {
  source = "./tests/mocks"
}

variables {
  lambda_zip_dir = "./tests/fixtures/lambda"
}

run "off_by_default" {
  command = plan

  assert {
    condition     = length(module.realtime) == 0
    error_message = "realtime must not be deployed unless realtime.enabled = true"
  }
}

run "enabled_without_keys_is_refused" {
  command = plan

  variables {
    realtime = { enabled = true }
  }

  expect_failures = [var.realtime]
}

run "realtime_on" {
  command = apply

  variables {
    realtime = {
      enabled = true
      jwks    = "{\"keys\": []}"
      issuer  = "https://issuer.example"
    }
  }

  assert {
    condition     = module.realtime[0].function_names["realtime-relay"] == "tideline-realtime-relay"
    error_message = "the relay is deployed under the name prefix"
  }

  assert {
    condition     = output.realtime_websocket_url != null
    error_message = "the root module outputs where clients connect"
  }

  assert {
    condition = alltrue([
      for s in module.realtime[0].relay_policy_statements : s.sid != "PostToConnections" || alltrue([
        for r in s.resources : endswith(r, "/live/*/@connections/*") && startswith(r, "arn:aws:execute-api:")
      ])
    ])
    error_message = "the relay may manage connections of this API's stage only"
  }
}
