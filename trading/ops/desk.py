"""The live risk desk (GET /ops/ and /ops/desk.json): thin views over trading.desk.

The page renders the desk now; static/js/ops-desk.js keeps it current: it joins
`ws/ops/desk/` (staff, 2FA-verified) and re-reads /ops/desk.json when a
"desk changed" hint arrives (debounced), and every 30 s when it has no socket.
"""

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.cache import add_never_cache_headers
from django.views.decorators.http import require_GET

from accounts.staff import staff_json, staff_page, staff_render
from trading.desk import desk_get


@require_GET
@staff_page
def desk_page(request: HttpRequest) -> HttpResponse:
    desk = desk_get()
    response = staff_render(request, "ops/desk.html", {"title": "Risk desk", "desk": desk})
    add_never_cache_headers(response)
    return response


@require_GET
@staff_json
def desk_json(request: HttpRequest) -> JsonResponse:
    response = JsonResponse(desk_get().as_json())
    add_never_cache_headers(response)
    return response
