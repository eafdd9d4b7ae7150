"""What the rest of Django tells the sockets: a logout ends the WebSockets opened with that session.

AuthMiddlewareStack reads the session once, at the handshake, and a consumer
never looks at it again. So logging out, which deletes the session, would
leave every socket opened with it still open, still chatting under the
user's name. Django sends the user_logged_out signal from its logout()
(LogoutView calls it, and so does the admin's logout); here it becomes one
event to the session's group, which each of those sockets joined
(chat/consumers.py). The user's other sessions, other browsers, stay.
"""

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.contrib.auth.signals import user_logged_out
from django.dispatch import receiver

from .consumers import session_group


@receiver(user_logged_out)
def end_the_sessions_sockets(sender, request, user, **kwargs):
    # user is None when nobody was logged in (a POST to the logout URL
    # from a visitor who was not): then there are no sockets to end.
    if user is None:
        return
    # A signal receiver is plain sync code, called from the sync logout view,
    # and the layer's methods are coroutines: async_to_sync runs one to the
    # end and returns. "session.ended" calls session_ended() in each consumer
    # of the group, in this process and, on Redis, in every other one. The
    # session still has its key here: Django flushes it after this signal.
    group = session_group(request.session.session_key)
    async_to_sync(get_channel_layer().group_send)(group, {"type": "session.ended", "why": "you logged out"})
