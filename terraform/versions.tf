terraform {
  # 1.9 is the first release whose variable validations may refer to other
  # variables; the queue module uses that to enforce "visibility timeout >= 6x
  # the storer timeout" at plan time.
  required_version = ">= 1.9.0"

  required_providers {
    aws = {
      source = "hashicorp/aws"
      # 5.x and 6.x both carry every argument used here (deletion protection,
      # SQS event source scaling_config, Firehose dynamic partitioning).
      version = ">= 5.70, < 7.0"
    }
  }
}
