from django.urls import re_path

from realtime import views

urlpatterns: list = []
