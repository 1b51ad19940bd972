# Decision 0009: new tables have no index (history reads in sk order); a
# table created before it keeps its `by-sequence` LSI behind
# legacy_sequence_index, so Terraform never plans to replace it.

mock_provider "aws" {
  source = "./tests/mocks"
}

run "a_new_table_has_no_index" {
  command = plan

  module {
    source = "./modules/store"
  }

  variables {
    table_name  = "tl-events"
    kms_key_arn = "arn:aws:kms:us-east-1:123456789012:key/00000000-0000-0000-0000-000000000000"
  }

  assert {
    condition     = length(aws_dynamodb_table.events.local_secondary_index) == 0
    error_message = "a new events table must have no local secondary index"
  }

  assert {
    condition     = toset([for a in aws_dynamodb_table.events.attribute : a.name]) == toset(["pk", "sk"])
    error_message = "a new events table defines only its keys pk and sk"
  }

  assert {
    condition     = aws_dynamodb_table.events.deletion_protection_enabled == true
    error_message = "deletion protection is what stops a wrong legacy_sequence_index from replacing the table"
  }
}

run "a_legacy_table_keeps_its_index" {
  command = plan

  module {
    source = "./modules/store"
  }

  variables {
    table_name            = "tl-events"
    kms_key_arn           = "arn:aws:kms:us-east-1:123456789012:key/00000000-0000-0000-0000-000000000000"
    legacy_sequence_index = true
  }

  assert {
    condition     = [for i in aws_dynamodb_table.events.local_secondary_index : i.name] == ["by-sequence"]
    error_message = "legacy_sequence_index must keep the by-sequence LSI"
  }

  assert {
    condition     = contains([for a in aws_dynamodb_table.events.attribute : a.name], "seq")
    error_message = "the legacy LSI needs the seq attribute"
  }
}

run "the_root_module_defaults_to_no_index" {
  command = plan

  variables {
    lambda_zip_dir = "./tests/fixtures/lambda"
  }

  assert {
    condition     = length(module.store.table_name) > 0 && var.legacy_sequence_index == false
    error_message = "new deployments default to the table without an index"
  }
}
