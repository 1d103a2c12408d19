import pytest

from accounts.models import User
from accounts.services import user_create
from bamchat.errors import Invalid
from tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("username", ["bad\x00name", "bad\ud800name"])
def test_unstorable_usernames_are_invalid(username):
    with pytest.raises(Invalid) as err:
        user_create(username=username, password=PASSWORD)
    assert "username" in err.value.fields
    assert not User.objects.exists()


def test_a_case_or_width_twin_is_invalid_on_the_username_field():
    UserFactory(username="nfoo")
    with pytest.raises(Invalid) as err:
        user_create(username="\uff2e\uff26\uff4f\uff4f", password=PASSWORD)
    assert err.value.fields == {
        "username": ["A user with that username already exists."]
    }
    assert User.objects.count() == 1
