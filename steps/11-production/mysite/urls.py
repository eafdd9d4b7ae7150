"""The HTTP URLs: the chat pages, the admin, and (step 08) Django's own login and logout."""

from django.contrib import admin
from django.urls import include, path

from chat.health import health

urlpatterns = [
    # Step 11: outside /chat/, where load balancers and deploy scripts look for it.
    path("healthz", health, name="health"),
    path("chat/", include("chat.urls")),
    # Step 08: login/, logout/ and the password pages, named "login" and
    # "logout", with Django's views. Django ships no template for them:
    # chat/templates/registration/login.html is the login page's.
    path("accounts/", include("django.contrib.auth.urls")),
    path("admin/", admin.site.urls),
]
