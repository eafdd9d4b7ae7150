"""The chat pages, at the same URLs as the official Channels tutorial."""

from django.urls import path

from . import staff, views

urlpatterns = [
    path("", views.index, name="index"),
    path("<str:room_name>/", views.room, name="room"),
    # Step 09: staff announce to a room from an ordinary view (chat/staff.py).
    path("<str:room_name>/announce/", staff.announce_view, name="announce"),
]
