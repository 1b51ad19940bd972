# The ordered-bus option (decision 0013), planned and applied against the
# mocked provider: the EventsV2 bus and its FIFO subscriber as a
# CloudFormation stack, the emitter switched to it with least privilege.
# Nothing here reaches AWS; what a live deploy must still check is listed in
# docs/ordered-bus.md.

mock_provider "aws" {
  source = "./tests/mocks"
}

variables {
  lambda_zip_dir = "./tests/fixtures/lambda"
}

run "off_by_default" {
  command = plan

  assert {
    condition     = length(module.ordered_bus) == 0
    error_message = "the ordered bus must not be deployed unless ordered_bus = true"
  }

  assert {
    condition     = !contains(keys(module.event_emitter.environment), "TIDELINE_BUS_MODE")
    error_message = "the emitter stays on the classic bus by default"
  }
}

run "ordered_bus_on" {
  command = apply

  variables {
    ordered_bus = true
  }

  assert {
    condition     = module.event_emitter.environment["TIDELINE_BUS_MODE"] == "ordered"
    error_message = "the emitter must publish in ordered mode"
  }

  assert {
    condition     = module.event_emitter.environment["TIDELINE_ORDERED_BUS_ARN"] == output.ordered_bus_arn
    error_message = "the emitter must publish to the stack's bus"
  }

  assert {
    condition     = can(regex(":event-busv2/", output.ordered_bus_arn))
    error_message = "the ordered bus ARN comes from the stack's BusArn output"
  }

  assert {
    condition     = module.ordered_bus[0].template.Resources.Bus.Type == "AWS::EventsV2::EventBus"
    error_message = "the stack deploys an EventsV2 bus"
  }

  assert {
    condition = alltrue([
      module.ordered_bus[0].template.Resources.FifoSubscriber.Type == "AWS::EventsV2::Subscriber",
      module.ordered_bus[0].template.Resources.FifoSubscriber.Properties.Type == "FIFO",
    ])
    error_message = "the stack deploys a FIFO subscriber"
  }

  assert {
    condition     = module.ordered_bus[0].template.Resources.FifoSubscriber.Properties.InvokeConfiguration.TargetArn == module.ordered_bus[0].queue_arn
    error_message = "the subscriber delivers to the module's FIFO queue"
  }

  assert {
    condition     = jsondecode(module.ordered_bus[0].template.Resources.FifoSubscriber.Properties.FilterConfiguration.Filters[0].Pattern).source == ["tideline"]
    error_message = "the subscriber's filter matches the emitter's source"
  }
}

run "emitter_may_publish_only_to_the_ordered_bus" {
  command = apply

  variables {
    ordered_bus = true
  }

  assert {
    condition = alltrue([
      for s in module.event_emitter.policy_statements :
      join(",", s.resources) == output.ordered_bus_arn if contains(s.actions, "events:PutEvents")
    ])
    error_message = "events:PutEvents must be scoped to the ordered bus only"
  }

  assert {
    condition     = length([for s in module.event_emitter.policy_statements : s if contains(s.actions, "events:PutEvents")]) == 1
    error_message = "exactly one statement may publish"
  }
}

run "classic_emitter_publishes_only_to_the_classic_bus" {
  command = plan

  assert {
    condition = join(",", flatten([
      for s in module.event_emitter.policy_statements : s.resources
      if contains(s.actions, "events:PutEvents")
    ])) == module.bus.bus_arn
    error_message = "without ordered_bus, events:PutEvents is on the classic bus only"
  }
}
