"""The HTTP URLs: the chat pages and the admin (where you can log in)."""

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("chat/", include("chat.urls")),
    path("admin/", admin.site.urls),
]
