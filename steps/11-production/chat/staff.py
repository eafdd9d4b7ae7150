"""A page for staff that announces to a room from an ordinary view (step 09).

A sync view like any other: a form, CSRF, a redirect. Its only new line is
the push (chat/push.py), which reaches the room's sockets through the layer.
chat/views.py stays as step 00 wrote it; the announcement has a file of its own.
"""

from django import forms
from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.http import Http404
from django.shortcuts import redirect, render

from .push import MAX_ANNOUNCEMENT, PushFailed, announce, group_name
from .rooms import is_valid_room_name


class AnnouncementForm(forms.Form):
    # CharField strips spaces and refuses an empty value, as announce() would.
    text = forms.CharField(max_length=MAX_ANNOUNCEMENT, widget=forms.Textarea(attrs={"rows": 3}))


# Staff only: it speaks to everyone in a room at once. Anyone else is sent to
# the admin's login page, and comes back here once logged in as staff.
@staff_member_required
def announce_view(request, room_name):
    if not is_valid_room_name(room_name):
        raise Http404("no such room")
    form = AnnouncementForm(request.POST or None)
    # CsrfViewMiddleware has already refused a POST without the form's token.
    if request.method == "POST" and form.is_valid():
        try:
            announce(room_name, form.cleaned_data["text"])
        except PushFailed:
            # Say so, and keep the text in the form to send again: 503, the
            # service it needs is unavailable.
            messages.error(request, "Not sent: the channel layer could not be reached, so nobody heard it. "
                                    "Try again in a moment.")
            return render(request, "chat/announce.html", {"room_name": room_name, "form": form}, status=503)
        # The layer cannot say who heard it, so the page says only what it did.
        messages.success(request, f"Sent to {group_name(room_name)}: everyone in the room now hears it.")
        # Post/Redirect/Get: a reload of the page that follows sends nothing twice.
        return redirect("announce", room_name=room_name)
    return render(request, "chat/announce.html", {"room_name": room_name, "form": form})
