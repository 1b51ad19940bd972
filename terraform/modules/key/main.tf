# One customer managed key encrypts every store of the pipeline at rest: the
# data lake, the Firehose stream, the FIFO queues, the DynamoDB tables and
# their streams, the log groups, the Lambda environment and the alarm topic.
# A single key keeps the key policy in one place; IAM policies on each role
# still decide which principal may use it, and for what.

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}
data "aws_region" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  # `name` replaces `region` on aws_region in provider 6; `name` still works in 5 and 6.
  region = data.aws_region.current.name

  administrators = length(var.administrator_arns) > 0 ? var.administrator_arns : ["arn:${local.partition}:iam::${local.account_id}:root"]

  # Key administration: everything but cryptographic use. Listed, not
  # "kms:*", so that no policy in this stack carries a wildcard action.
  admin_actions = [
    "kms:CancelKeyDeletion",
    "kms:CreateAlias",
    "kms:DeleteAlias",
    "kms:DescribeKey",
    "kms:DisableKey",
    "kms:DisableKeyRotation",
    "kms:EnableKey",
    "kms:EnableKeyRotation",
    "kms:GetKeyPolicy",
    "kms:GetKeyRotationStatus",
    "kms:ListGrants",
    "kms:ListKeyPolicies",
    "kms:ListKeyRotations",
    "kms:ListResourceTags",
    "kms:PutKeyPolicy",
    "kms:RetireGrant",
    "kms:RevokeGrant",
    "kms:RotateKeyOnDemand",
    "kms:ScheduleKeyDeletion",
    "kms:TagResource",
    "kms:UntagResource",
    "kms:UpdateAlias",
    "kms:UpdateKeyDescription",
  ]

  # Key use by principals of this account (each role's IAM policy narrows
  # it further): only through the services that store the pipeline's data.
  use_actions = [
    "kms:Decrypt",
    "kms:Encrypt",
    "kms:GenerateDataKey",
    "kms:GenerateDataKeyWithoutPlaintext",
    "kms:ReEncryptFrom",
    "kms:ReEncryptTo",
  ]
  via_services = [for svc in ["dynamodb", "sqs", "s3", "lambda", "firehose", "sns", "events"] : "${svc}.${local.region}.amazonaws.com"]

  bus_arn = "arn:${local.partition}:events:${local.region}:${local.account_id}:event-bus/${var.event_bus_name}"
}

resource "aws_kms_key" "this" {
  description             = "${var.name}: encrypts the Tideline pipeline's data at rest"
  key_usage               = "ENCRYPT_DECRYPT"
  enable_key_rotation     = true
  rotation_period_in_days = 365
  deletion_window_in_days = var.deletion_window_in_days
  is_enabled              = true

  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        # Administration, apart from use. Without a statement that lets the
        # account manage the key, it would be unmanageable (the KMS lock-out
        # safety check).
        Sid       = "AdministratorsManageKey"
        Effect    = "Allow"
        Principal = { AWS = local.administrators }
        Action    = local.admin_actions
        Resource  = "*"
      },
      {
        # Use, only through the services that hold the pipeline's data.
        Sid       = "AccountUsesKeyThroughPipelineServices"
        Effect    = "Allow"
        Principal = { AWS = "arn:${local.partition}:iam::${local.account_id}:root" }
        Action    = concat(local.use_actions, ["kms:DescribeKey"])
        Resource  = "*"
        Condition = {
          StringEquals = {
            "kms:ViaService"    = local.via_services
            "kms:CallerAccount" = local.account_id
          }
        }
      },
      {
        # DynamoDB, Lambda and Firehose keep grants on the key for the
        # resources they encrypt; created while deploying them.
        Sid       = "PipelineServicesHoldGrants"
        Effect    = "Allow"
        Principal = { AWS = "arn:${local.partition}:iam::${local.account_id}:root" }
        Action    = ["kms:CreateGrant"]
        Resource  = "*"
        Condition = {
          StringEquals = {
            "kms:ViaService"    = local.via_services
            "kms:CallerAccount" = local.account_id
          }
          Bool = { "kms:GrantIsForAWSResource" = "true" }
        }
      },
      {
        # CloudWatch Logs encrypts log groups with the key; the encryption
        # context pins the use to this account's log groups.
        Sid       = "CloudWatchLogsEncryptsLogGroups"
        Effect    = "Allow"
        Principal = { Service = "logs.${local.region}.amazonaws.com" }
        Action = [
          "kms:Encrypt",
          "kms:Decrypt",
          "kms:ReEncryptFrom",
          "kms:ReEncryptTo",
          "kms:GenerateDataKey",
          "kms:GenerateDataKeyWithoutPlaintext",
          "kms:DescribeKey",
        ]
        Resource = "*"
        Condition = {
          ArnLike = {
            "kms:EncryptionContext:aws:logs:arn" = "arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:*"
          }
        }
      },
      {
        # EventBridge encrypts the bus's events with the key, and its rules
        # send undeliverable events to the consumers' encrypted DLQs; only
        # for this bus and its rules.
        Sid       = "EventBridgeUsesKeyForBusAndRules"
        Effect    = "Allow"
        Principal = { Service = "events.amazonaws.com" }
        Action    = ["kms:Decrypt", "kms:GenerateDataKey"]
        Resource  = "*"
        Condition = {
          StringEquals = { "aws:SourceAccount" = local.account_id }
          ArnLike = {
            "aws:SourceArn" = [
              local.bus_arn,
              "arn:${local.partition}:events:${local.region}:${local.account_id}:rule/${var.event_bus_name}/*",
            ]
          }
        }
      },
      {
        # CloudWatch alarms publish to the encrypted SNS alarm topic.
        Sid       = "CloudWatchAlarmsPublishToEncryptedTopic"
        Effect    = "Allow"
        Principal = { Service = "cloudwatch.amazonaws.com" }
        Action    = ["kms:Decrypt", "kms:GenerateDataKey"]
        Resource  = "*"
        Condition = {
          StringEquals = { "aws:SourceAccount" = local.account_id }
          ArnLike      = { "aws:SourceArn" = "arn:${local.partition}:cloudwatch:${local.region}:${local.account_id}:alarm:*" }
        }
      },
    ]
  })

  tags = var.tags
}

resource "aws_kms_alias" "this" {
  name          = "alias/${var.name}"
  target_key_id = aws_kms_key.this.key_id
}
