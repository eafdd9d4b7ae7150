"""The admin's page for messages (step 09): a message added here is pushed to its room (chat/signals.py)."""

from django.contrib import admin

from .models import Message


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = ["room", "author", "text", "sent_at"]
    list_filter = ["room"]
