"""Django admin for the shared tables (read-mostly views for operators)."""

from __future__ import annotations

from django.contrib import admin

from backends.django_service.mlapi.models import (
    ComplexitySample,
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
