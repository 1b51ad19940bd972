terraform {
  # 1.9 is the first release whose variable validations may refer to other
  # variables; the queue module uses that to enforce "visibility timeout >= 6x
  # the storer timeout" at plan time.
  required_version = ">= 1.9.0"

  required_providers {
    aws = {
      source = "hashicorp/aws"
      # The versions the offline checks plan and apply against (the committed
      # lock files pin 5.100.0). 6.x renames and removes arguments (aws_region
      # `name`), so it is allowed only once it has been tested.
      version = "~> 5.100"
    }
  }
}
