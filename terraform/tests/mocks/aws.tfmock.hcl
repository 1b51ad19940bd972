# Shared mock of the AWS provider for `terraform test` (tests/*.tftest.hcl
# here and in examples/complete/tests). A mocked provider invents random
# strings for computed attributes; the provider's own validation (ARN shapes,
# JSON policies) and this configuration's preconditions need realistic
# values, so every computed attribute something validates gets one here.
#
# The region is one of the longest commercial region names, so a name that
# only fits in short regions fails here rather than at apply.

mock_data "aws_region" {
  defaults = {
    name        = "ap-southeast-4"
    id          = "ap-southeast-4"
    description = "Asia Pacific (Melbourne)"
  }
}

mock_data "aws_caller_identity" {
  defaults = {
    account_id = "123456789012"
    arn        = "arn:aws:iam::123456789012:user/terraform-test"
    user_id    = "AIDAEXAMPLEEXAMPLE"
  }
}

mock_data "aws_partition" {
  defaults = {
    partition          = "aws"
    dns_suffix         = "amazonaws.com"
    reverse_dns_prefix = "com.amazonaws"
  }
}

mock_data "aws_iam_policy_document" {
  defaults = {
    json          = "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Sid\":\"Mock\",\"Effect\":\"Allow\",\"Action\":\"sts:AssumeRole\",\"Principal\":{\"Service\":\"lambda.amazonaws.com\"}}]}"
    minified_json = "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Sid\":\"Mock\",\"Effect\":\"Allow\",\"Action\":\"sts:AssumeRole\",\"Principal\":{\"Service\":\"lambda.amazonaws.com\"}}]}"
  }
}

mock_resource "aws_kms_key" {
  defaults = {
    arn    = "arn:aws:kms:ap-southeast-4:123456789012:key/11111111-2222-3333-4444-555555555555"
    key_id = "11111111-2222-3333-4444-555555555555"
  }
}

mock_resource "aws_kms_alias" {
  defaults = {
    arn            = "arn:aws:kms:ap-southeast-4:123456789012:alias/tideline"
    target_key_arn = "arn:aws:kms:ap-southeast-4:123456789012:key/11111111-2222-3333-4444-555555555555"
  }
}

mock_resource "aws_iam_role" {
  defaults = {
    arn = "arn:aws:iam::123456789012:role/tideline-mock-role"
  }
}

mock_resource "aws_s3_bucket" {
  defaults = {
    arn                         = "arn:aws:s3:::tideline-mock-bucket"
    bucket_domain_name          = "tideline-mock-bucket.s3.amazonaws.com"
    bucket_regional_domain_name = "tideline-mock-bucket.s3.ap-southeast-4.amazonaws.com"
  }
}

mock_resource "aws_sqs_queue" {
  defaults = {
    arn = "arn:aws:sqs:ap-southeast-4:123456789012:tideline-mock-queue"
    url = "https://sqs.ap-southeast-4.amazonaws.com/123456789012/tideline-mock-queue"
    id  = "https://sqs.ap-southeast-4.amazonaws.com/123456789012/tideline-mock-queue"
  }
}

mock_resource "aws_dynamodb_table" {
  defaults = {
    arn        = "arn:aws:dynamodb:ap-southeast-4:123456789012:table/tideline-mock"
    stream_arn = "arn:aws:dynamodb:ap-southeast-4:123456789012:table/tideline-mock/stream/2026-01-01T00:00:00.000"
  }
}

mock_resource "aws_lambda_function" {
  defaults = {
    arn           = "arn:aws:lambda:ap-southeast-4:123456789012:function:tideline-mock"
    qualified_arn = "arn:aws:lambda:ap-southeast-4:123456789012:function:tideline-mock:1"
    invoke_arn    = "arn:aws:apigateway:ap-southeast-4:lambda:path/2015-03-31/functions/arn:aws:lambda:ap-southeast-4:123456789012:function:tideline-mock/invocations"
  }
}

mock_resource "aws_cloudwatch_log_group" {
  defaults = {
    arn = "arn:aws:logs:ap-southeast-4:123456789012:log-group:/aws/mock"
  }
}

mock_resource "aws_cloudwatch_event_bus" {
  defaults = {
    arn = "arn:aws:events:ap-southeast-4:123456789012:event-bus/tideline"
  }
}

mock_resource "aws_cloudwatch_event_rule" {
  defaults = {
    arn = "arn:aws:events:ap-southeast-4:123456789012:rule/tideline/mock"
  }
}

mock_resource "aws_cloudwatch_event_archive" {
  defaults = {
    arn = "arn:aws:events:ap-southeast-4:123456789012:archive/tideline-archive"
  }
}

mock_resource "aws_sns_topic" {
  defaults = {
    arn = "arn:aws:sns:ap-southeast-4:123456789012:tideline-alarms"
  }
}

mock_resource "aws_kinesis_firehose_delivery_stream" {
  defaults = {
    arn = "arn:aws:firehose:ap-southeast-4:123456789012:deliverystream/tideline-ingest"
  }
}

mock_resource "aws_apigatewayv2_api" {
  defaults = {
    api_endpoint  = "https://abcdef1234.execute-api.ap-southeast-4.amazonaws.com"
    arn           = "arn:aws:apigateway:ap-southeast-4::/apis/abcdef1234"
    execution_arn = "arn:aws:execute-api:ap-southeast-4:123456789012:abcdef1234"
    id            = "abcdef1234"
  }
}

mock_resource "aws_apigatewayv2_stage" {
  defaults = {
    invoke_url = "https://abcdef1234.execute-api.ap-southeast-4.amazonaws.com/"
  }
}

mock_resource "aws_cloudwatch_metric_alarm" {
  defaults = {
    arn = "arn:aws:cloudwatch:ap-southeast-4:123456789012:alarm:tideline-mock"
  }
}

# The ordered bus's stack (modules/ordered_bus): its outputs as CloudFormation
# would return them; an EventsV2 bus ARN has the form event-busv2/<name>/<id>.
mock_resource "aws_cloudformation_stack" {
  defaults = {
    id = "arn:aws:cloudformation:ap-southeast-4:123456789012:stack/tideline-ordered-ordered-bus/00000000-0000-0000-0000-000000000000"
    outputs = {
      BusArn        = "arn:aws:events:ap-southeast-4:123456789012:event-busv2/tideline-ordered/abcdefghij0123456789abcde"
      SubscriberArn = "arn:aws:events:ap-southeast-4:123456789012:subscriber/tideline-ordered/tideline-ordered-fifo"
    }
  }
}
