"""The admin's page for messages (step 09): a message added here is pushed to its room (chat/signals.py)."""

from django.contrib import admin

from .models import Message


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = ["room", "author", "text", "sent_at"]
    list_filter = ["room"]
    # The author is whoever is logged in here, as in the chat, where the
    # consumer takes the name from the session: a field to type it into
    # would let any staff member post live as any user.
    readonly_fields = ["author"]

    def save_model(self, request, obj, form, change):
        if not change:
            obj.author = request.user.get_username()
        super().save_model(request, obj, form, change)
