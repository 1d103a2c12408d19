import factory
from django.contrib.auth import get_user_model

from messaging.models import Bam, Membership

PASSWORD = "correct-horse-battery-42"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def _save(self, create, extracted, **kwargs):
        if create:
            self.save()


class BamFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Bam
        skip_postgeneration_save = True

    title = factory.Sequence(lambda n: f"BAM {n}")
    owner = factory.SubFactory(UserFactory)

    @factory.post_generation
    def members(self, create, extracted, **kwargs):
        if not create:
            return
        Membership.objects.create(bam=self, user=self.owner, role=Membership.Role.OWNER)
        for user in extracted or []:
            Membership.objects.create(bam=self, user=user)
