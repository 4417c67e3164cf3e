"""HTML pages of this app, under /evaluation/."""

from django.urls import path

from evaluation import views

app_name = "evaluation"

urlpatterns = [
    path("", views.home, name="home"),
    path("studies/new/", views.study_new, name="study-new"),
    path("studies/<int:pk>/", views.study_detail, name="study"),
    path("studies/<int:pk>/rate/<int:position>/", views.rate, name="rate"),
    path("studies/<int:pk>/report/", views.report, name="report"),
    path(
        "studies/<int:pk>/report.<str:fmt>",
        views.report_export,
        name="report-export",
    ),
    path("studies/<int:pk>/close/", views.study_close, name="close"),
    path("studies/<int:pk>/references/", views.study_references, name="references"),
    path("studies/<int:pk>/metrics/", views.study_metrics, name="metrics"),
    path("img/<str:token>.png", views.image, name="image"),
]
