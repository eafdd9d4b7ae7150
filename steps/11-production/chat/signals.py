"""What the rest of Django tells the sockets: a logout ends the WebSockets opened with that session.

AuthMiddlewareStack reads the session once, at the handshake, and a consumer
never looks at it again. So logging out, which deletes the session, would
leave every socket opened with it still open, still chatting under the
user's name. Django sends the user_logged_out signal from its logout()
(LogoutView calls it, and so does the admin's logout); here it becomes one
event to the session's group, which each of those sockets joined
(chat/consumers.py). The user's other sessions, other browsers, stay.

Step 09: and a Message saved anywhere but in a consumer (the admin, the
shell, a script) reaches its room live, through a post_save receiver.
"""

from django.contrib.auth.signals import user_logged_out
from django.db import transaction
from django.db.models.signals import post_save
from django.dispatch import receiver

from .consumers import session_group
from .models import Message
from .push import PushFailed, push_message, send_to_group


@receiver(user_logged_out)
def end_the_sessions_sockets(sender, request, user, **kwargs):
    # user is None when nobody was logged in (a POST to the logout URL
    # from a visitor who was not): then there are no sockets to end.
    if user is None:
        return
    # "session.ended" calls session_ended() in each consumer of the group, in
    # this process and, on Redis, in every other one. send_to_group() runs
    # the layer's coroutine from this sync code, as step 08 did by hand. The
    # session still has its key here: Django flushes it after this signal.
    group = session_group(request.session.session_key)
    try:
        send_to_group(group, {"type": "session.ended", "why": "you logged out"})
    except PushFailed:
        # Django flushes the session after this signal: an exception here
        # would answer the logout with 500 and leave the user logged in.
        # Each socket's own session check (chat/consumers.py) will still find
        # the session gone, once the layer can carry its event.
        pass


@receiver(post_save, sender=Message)
def push_new_message(sender, instance, created, raw, **kwargs):
    # Only new rows: an edit in the admin is not a new message. raw is True
    # while `loaddata` fills the table from a fixture: old messages, not news.
    if not created or raw:
        return
    # The consumer stores what its socket says and sends it to the room
    # itself, awaited on the event loop, with its "sender" so each tab knows
    # its own. It marks the row so that it is not sent a second time here.
    if getattr(instance, "sent_by_consumer", False):
        return
    # After the transaction commits, never before: the admin saves inside
    # one, and a rolled-back row must not have been announced. Outside a
    # transaction (the shell), on_commit runs it at once.
    transaction.on_commit(lambda: push_message(instance))
