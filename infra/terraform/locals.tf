data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

locals {
  name_prefix = "${var.name}-${var.environment}"
  account_id  = data.aws_caller_identity.current.account_id
  partition   = data.aws_partition.current.partition

  # Ports every service container listens on (docs/conventions.md: container public 8080, admin 9090).
  public_port = 8080
  admin_port  = 9090

  # The three services behind the ALB. Keys are the service names of docs/conventions.md; `db` is the
  # service's PostgreSQL database; `template` its task definition in deploy/ecs-task-defs/.
  services = {
    vault = {
      binary   = "casino-vault"
      db       = "vault"
      template = "${path.module}/../../deploy/ecs-task-defs/vault.json"
    }
    concierge = {
      binary   = "casino-concierge"
      db       = "concierge"
      template = "${path.module}/../../deploy/ecs-task-defs/concierge.json"
    }
    room-service = {
      binary   = "casino-room-service"
      db       = "room_service"
      template = "${path.module}/../../deploy/ecs-task-defs/room-service.json"
    }
  }

  # ALB path routing (first match by priority). Everything under /api/ and /.well-known/ that is not
  # claimed by Concierge or Room-Service belongs to Vault; anything else gets a 404 from the ALB.
  routes = {
    concierge = {
      priority      = 100
      path_patterns = ["/api/v1/rewards*", "/api/v1/levels*", "/api/v1/leaderboards*"]
      stickiness    = false
    }
    room-service = {
      priority      = 200
      path_patterns = ["/socket.io/*", "/api/v1/notifications*", "/api/v1/chat*"]
      stickiness    = true # socket.io HTTP long-polling fallback must stay on one task
    }
    vault = {
      priority      = 300
      path_patterns = ["/api/*", "/.well-known/*"]
      stickiness    = false
    }
  }

  health_check_path = "/readyz"

  images = {
    for k, tag in var.image_tags : k => "${var.image_repository_prefix}/${k}:${tag}"
  }

  alerts_dir = coalesce(var.alerts_dir, "${path.module}/../../alerts")

  public_base_url = "https://${var.public_hostname}"
}
