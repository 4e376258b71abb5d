# A public URL (auth type NONE) needs two grants in the function's resource policy:
# lambda:InvokeFunctionUrl, and (for URLs created since October 2025) lambda:InvokeFunction
# limited to calls made through the URL. aws provider 5.x has no argument for that limit, so the
# second grant goes through the AWS CLI rather than opening plain Invoke to everyone.

locals {
  public_functions = var.function_url_auth_type == "NONE" ? merge(
    { main = aws_lambda_function.laneway.function_name },
    var.enable_streaming ? { streaming = aws_lambda_function.streaming[0].function_name } : {},
  ) : {}
}

resource "aws_lambda_permission" "public_url" {
  #checkov:skip=CKV_AWS_301:Public only with auth type NONE, where laneway's master key guards every route but health.
  for_each               = local.public_functions
  statement_id           = "FunctionURLAllowPublicAccess"
  action                 = "lambda:InvokeFunctionUrl"
  function_name          = each.value
  qualifier              = each.key == "main" && var.snap_start ? "live" : null # the URL's alias
  principal              = "*"
  function_url_auth_type = "NONE"
}

resource "terraform_data" "public_invoke_via_url" {
  for_each         = var.public_invoke_permission_via_cli ? local.public_functions : {}
  triggers_replace = [each.value, aws_lambda_permission.public_url[each.key].id]

  provisioner "local-exec" {
    command = <<-EOT
      aws lambda add-permission --region ${data.aws_region.current.name} \
        --function-name ${each.value}${each.key == "main" && var.snap_start ? " --qualifier live" : ""} \
        --statement-id FunctionURLInvokeAllowPublicAccess \
        --action lambda:InvokeFunction --principal '*' --invoked-via-function-url \
      || aws lambda get-policy --region ${data.aws_region.current.name} --function-name ${each.value} \
        ${each.key == "main" && var.snap_start ? "--qualifier live" : ""} \
        | grep -q FunctionURLInvokeAllowPublicAccess
    EOT
  }
}
