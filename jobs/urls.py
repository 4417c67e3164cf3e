from django.urls import path

from jobs import views

app_name = "jobs"

urlpatterns = [
    path("<uuid:pk>/", views.job_page, name="job"),
    path("<uuid:pk>/status/", views.job_status, name="status"),
]
