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

# The rule takes the handler registry's pattern (what
# `orders_registry --print-event-pattern` prints), not the rules file's.
run "registry_pattern_drives_the_rule" {
  command = apply

  variables {
    responder_event_pattern_json = "{\"source\":[\"tideline\"],\"detail-type\":[\"OrderCancelled\",\"OrderPlaced\",\"OrderShipped\"]}"
  }

  assert {
    condition     = jsondecode(module.event_responder.event_pattern) == jsondecode("{\"source\":[\"tideline\"],\"detail-type\":[\"OrderCancelled\",\"OrderPlaced\",\"OrderShipped\"]}")
    error_message = "the rule must use the registry's pattern"
  }
}

run "rules_file_pattern_without_a_registry" {
  command = plan

  assert {
    condition     = jsondecode(module.event_responder.event_pattern)["detail-type"][0]["anything-but"] == ["EventExpired"]
    error_message = "without a registry pattern the rule keeps the rules file's pattern"
  }
}

run "registry_pattern_without_types_is_refused" {
  command = plan

  variables {
    responder_event_pattern_json = "{\"source\":[\"tideline\"],\"detail-type\":[]}"
  }

  expect_failures = [var.responder_event_pattern_json]
}
