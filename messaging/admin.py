from django.contrib import admin, messages
from django.utils.translation import ngettext

from bamchat.errors import DomainError
from messaging import lifecycle
from messaging.models import Attachment, Bam, Membership, Message


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]
    readonly_fields = ["joined_at"]


@admin.register(Bam)
class BamAdmin(admin.ModelAdmin):
    list_display = ["id", "title", "owner", "last_seq", "created_at", "updated_at"]
    search_fields = ["title", "owner__username"]
    list_filter = ["created_at"]
    autocomplete_fields = ["owner"]
    readonly_fields = ["last_seq", "created_at", "updated_at"]
    inlines = [MembershipInline]
    ordering = ["-updated_at", "-id"]


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "bam",
        "seq",
        "sender",
        "to_user",
        "type",
        "short_content",
        "created_at",
        "edited_at",
        "deleted",
    ]
    list_filter = [
        "type",
        "created_at",
        ("bam", admin.RelatedOnlyFieldListFilter),
        ("sender", admin.RelatedOnlyFieldListFilter),
    ]
    search_fields = ["content", "sender__username", "bam__title", "temp_id"]
    date_hierarchy = "created_at"
    list_select_related = ["bam", "sender", "to_user"]
    # Content changes go through the services, which number and announce them.
    readonly_fields = [
        "bam",
        "seq",
        "sender",
        "to_user",
        "type",
        "content",
        "temp_id",
        "created_at",
        "edited_at",
        "deleted_at",
    ]
    actions = ["delete_for_everyone"]

    @admin.display(description="content")
    def short_content(self, obj: Message) -> str:
        if obj.deleted_at is not None:
            return "(deleted)"
        return obj.content if len(obj.content) <= 80 else obj.content[:77] + "..."

    @admin.display(description="deleted", boolean=True, ordering="deleted_at")
    def deleted(self, obj: Message) -> bool:
        return obj.deleted_at is not None

    def has_add_permission(self, request) -> bool:
        # New messages go through the API so they get a sequence number and an event.
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        # A message is never removed from history: it is erased to a tombstone.
        return False

    @admin.action(
        description="Delete selected messages for everyone (keeps a tombstone)",
        permissions=["change"],
    )
    def delete_for_everyone(self, request, queryset) -> None:
        """Erase the selected messages through the same service as the API."""
        done = 0
        for message_id in queryset.filter(deleted_at__isnull=True).values_list(
            "pk", flat=True
        ):
            try:
                lifecycle.message_delete(
                    message_id=message_id, user=request.user, as_staff=True
                )
                done += 1
            except DomainError as exc:
                self.message_user(request, exc.message, messages.WARNING)
        self.message_user(
            request,
            ngettext("Deleted %d message.", "Deleted %d messages.", done) % done,
            messages.SUCCESS,
        )


@admin.register(Attachment)
class AttachmentAdmin(admin.ModelAdmin):
    """Uploads, read-only: they are created and removed through the API and cleanup."""

    list_display = [
        "id",
        "name",
        "kind",
        "content_type",
        "size",
        "bam",
        "uploader",
        "message",
        "created_at",
    ]
    list_filter = [
        "kind",
        "created_at",
        ("bam", admin.RelatedOnlyFieldListFilter),
        ("uploader", admin.RelatedOnlyFieldListFilter),
    ]
    search_fields = ["name", "uploader__username", "bam__title"]
    date_hierarchy = "created_at"
    list_select_related = ["bam", "uploader"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
