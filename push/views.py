"""REST views for push: thin wrappers around ``push.services``; the demo page."""

from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.views.decorators.http import require_GET
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response

from accounts.permissions import IsActiveUser
from messaging.views import request_object
from push import devices, selectors, services
from push.serializers import (
    DeviceCreateSerializer,
    DeviceSerializer,
    MembershipMuteSerializer,
    MembershipStateSerializer,
    SubscriptionCreateSerializer,
    SubscriptionSerializer,
    VapidKeySerializer,
)
from push.vapid import vapid_public_key


class VapidKeyView(GenericAPIView):
    """The ``applicationServerKey`` for ``pushManager.subscribe``."""

    permission_classes = [IsActiveUser]
    serializer_class = VapidKeySerializer

    def get(self, request):
        return Response({"publicKey": vapid_public_key()})


class SubscriptionListView(GenericAPIView):
    """The caller's devices; registering one (the same endpoint again updates it)."""

    permission_classes = [IsActiveUser]
    serializer_class = SubscriptionSerializer
    pagination_class = None
    throttle_scope = "rest_write"

    @extend_schema(responses=SubscriptionSerializer(many=True))
    def get(self, request):
        subscriptions = selectors.subscription_list(user=request.user)
        return Response(SubscriptionSerializer(subscriptions, many=True).data)

    @extend_schema(
        request=SubscriptionCreateSerializer,
        responses={201: SubscriptionSerializer, 200: SubscriptionSerializer},
    )
    def post(self, request):
        body = request_object(request)
        subscription, created = services.subscription_save(
            user=request.user,
            endpoint=body.get("endpoint"),
            keys=body.get("keys"),
            expiration_time=body.get("expirationTime"),
        )
        return Response(
            SubscriptionSerializer(subscription).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )


class SubscriptionDetailView(GenericAPIView):
    """Forget one of the caller's devices; anyone else's is a 404."""

    permission_classes = [IsActiveUser]
    throttle_scope = "rest_write"

    @extend_schema(responses={204: None})
    def delete(self, request, subscription_id):
        services.subscription_delete(user=request.user, subscription_id=subscription_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


class DeviceListView(GenericAPIView):
    """The caller's app devices; registering one (the same token again is the same
    device, moved to the caller if another user had it)."""

    permission_classes = [IsActiveUser]
    serializer_class = DeviceSerializer
    pagination_class = None
    throttle_scope = "rest_write"

    @extend_schema(responses=DeviceSerializer(many=True))
    def get(self, request):
        return Response(
            DeviceSerializer(selectors.device_list(user=request.user), many=True).data
        )

    @extend_schema(
        request=DeviceCreateSerializer,
        responses={201: DeviceSerializer, 200: DeviceSerializer},
    )
    def post(self, request):
        body = request_object(request)
        device, created = devices.device_save(
            user=request.user,
            platform=body.get("platform"),
            token=body.get("token"),
            app_id=body.get("appId"),
            locale=body.get("locale"),
        )
        return Response(
            DeviceSerializer(device).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )


class DeviceDetailView(GenericAPIView):
    """Forget one of the caller's app devices; anyone else's is a 404."""

    permission_classes = [IsActiveUser]
    throttle_scope = "rest_write"

    @extend_schema(responses={204: None})
    def delete(self, request, device_id):
        devices.device_delete(user=request.user, device_id=device_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


class MembershipView(GenericAPIView):
    """The caller's own membership of a BAM: mute or unmute its pushes."""

    permission_classes = [IsActiveUser]
    serializer_class = MembershipStateSerializer
    throttle_scope = "rest_write"

    @extend_schema(
        request=MembershipMuteSerializer, responses=MembershipStateSerializer
    )
    def patch(self, request, bam_id):
        membership = services.membership_mute_set(
            bam_id=bam_id, user=request.user, muted=request_object(request).get("muted")
        )
        return Response(
            {
                "bamId": str(membership.bam_id),
                "userId": str(membership.user_id),
                "muted": membership.muted,
            }
        )


@require_GET
def demo(request: HttpRequest) -> HttpResponse:
    """A page that logs in, subscribes this browser and shows what arrives."""
    return TemplateResponse(request, "push/demo.html", {})


@require_GET
def service_worker(request: HttpRequest) -> HttpResponse:
    """The demo's service worker: shows each push as a notification."""
    response = TemplateResponse(
        request, "push/sw.js", {}, content_type="text/javascript; charset=utf-8"
    )
    response["Cache-Control"] = "no-cache"
    return response
