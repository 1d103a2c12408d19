from django.urls import re_path

from push import views

urlpatterns = [
    re_path(r"^vapid-key/?$", views.VapidKeyView.as_view(), name="push-vapid-key"),
    re_path(
        r"^subscriptions/?$",
        views.SubscriptionListView.as_view(),
        name="push-subscriptions",
    ),
    re_path(
        r"^subscriptions/(?P<subscription_id>[^/]+)/?$",
        views.SubscriptionDetailView.as_view(),
        name="push-subscription",
    ),
    re_path(r"^devices/?$", views.DeviceListView.as_view(), name="push-devices"),
    re_path(
        r"^devices/(?P<device_id>[^/]+)/?$",
        views.DeviceDetailView.as_view(),
        name="push-device",
    ),
    re_path(r"^demo/?$", views.demo, name="push-demo"),
    re_path(r"^sw\.js$", views.service_worker, name="push-service-worker"),
]
