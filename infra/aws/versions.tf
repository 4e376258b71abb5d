terraform {
  # terraform_data (1.4) and lifecycle preconditions; `terraform test` mocks need 1.7 only in CI.
  required_version = ">= 1.5"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.60, < 7.0"
    }
  }
}
