"""Django admin for the shared tables (read-mostly views for operators)."""

from __future__ import annotations

from django.contrib import admin

from backends.django_service.mlapi.models import (
    ApiKey,
    ComplexitySample,
    CreditBudget,
    ResponseCache,
    ServiceRequest,
    ServiceUsage,
)


@admin.register(ServiceRequest)
class ServiceRequestAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = (
        "created_at",
        "service_name",
        "method",
        "endpoint",
        "status_code",
        "duration_ms",
    )
    list_filter = ("service_name", "status_code", "method")
    search_fields = ("endpoint", "request_id", "user_id")
    date_hierarchy = "created_at"


@admin.register(ServiceUsage)
class ServiceUsageAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("date", "service_name", "endpoint_category", "total_requests", "error_count")
    list_filter = ("service_name", "endpoint_category")


@admin.register(ResponseCache)
class ResponseCacheAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("endpoint", "service_name", "hit_count", "size_bytes", "expires_at")
    search_fields = ("cache_key", "endpoint")


@admin.register(ComplexitySample)
class ComplexitySampleAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("created_at", "task_type", "pre_score", "actual_score", "service_name")


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Read-only: keys are made with `python -m gateway keys create`, which shows one once."""

    list_display = ("prefix", "name", "user_id", "organization_id", "expires_at", "revoked_at")
    list_filter = ("organization_id",)
    search_fields = ("prefix", "name", "user_id", "organization_id")
    exclude = ("key_hash",)

    def has_add_permission(self, request: object) -> bool:
        return False

    def has_change_permission(self, request: object, obj: object = None) -> bool:
        return False


@admin.register(CreditBudget)
class CreditBudgetAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("subject_kind", "subject_id", "period", "credits", "updated_at")
    list_filter = ("subject_kind", "period")
