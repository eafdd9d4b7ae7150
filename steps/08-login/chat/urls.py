"""The chat pages, at the same URLs as the official Channels tutorial."""

from django.urls import path

from . import views

urlpatterns = [
    path("", views.index, name="index"),
    path("<str:room_name>/", views.room, name="room"),
]
