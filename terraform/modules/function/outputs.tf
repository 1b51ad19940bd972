output "function_name" {
  description = "Name of the function."
  value       = aws_lambda_function.this.function_name
}

output "function_arn" {
  description = "Unqualified ARN of the function."
  value       = aws_lambda_function.this.arn
}

output "invoke_arn" {
  description = "ARN API Gateway uses to invoke the function."
  value       = aws_lambda_function.this.invoke_arn
}

output "role_arn" {
  description = "ARN of the function's execution role."
  value       = aws_iam_role.this.arn
}

output "role_name" {
  description = "Name of the function's execution role."
  value       = aws_iam_role.this.name
}

output "log_group_name" {
  description = "The function's log group."
  value       = aws_cloudwatch_log_group.this.name
}

output "alarm_arns" {
  description = "ARNs of the function's error and throttle alarms."
  value       = [aws_cloudwatch_metric_alarm.errors.arn, aws_cloudwatch_metric_alarm.throttles.arn]
}

output "environment" {
  description = "The function's environment as deployed: the required variables and the optional ones that are set."
  value       = merge(var.environment, local.optional_environment)
}

output "policy_statements" {
  description = "The statements of the function's role policy, as given (tests assert on their scope)."
  value       = var.policy_statements
}
