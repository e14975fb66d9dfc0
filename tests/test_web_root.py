"""Mount dispatch of the HTTP root: longest prefix, multi-segment, root mounts."""

from twisted.web.resource import Resource
from twisted.web.test.requesthelper import DummyRequest

from freescore.web import JsonError, Root


class Leaf(Resource):
    isLeaf = True

    def __init__(self, label):
        super().__init__()
        self.label = label


def child(root, path):
    segments = [s.encode() for s in path.strip("/").split("/")]
    request = DummyRequest(segments[1:])
    request.prepath = [segments[0]]
    return root.getChild(segments[0], request), request


def test_longest_prefix_wins_and_consumes_its_segments():
    root = Root()
    root.mount("/fedmsg", Leaf("ws"))
    root.mount("/fedmsg/publish", Leaf("publish"))
    res, req = child(root, "/fedmsg/publish")
    assert res.label == "publish" and req.postpath == [] and req.prepath == [b"fedmsg", b"publish"]
    res, req = child(root, "/fedmsg")
    assert res.label == "ws"
    res, req = child(root, "/fedmsg/other")
    assert res.label == "ws" and req.postpath == [b"other"]


def test_unknown_path_is_json_404_unless_something_is_mounted_at_root():
    root = Root()
    root.mount("/ws", Leaf("ws"))
    res, _ = child(root, "/nope")
    assert isinstance(res, JsonError) and res.code == 404
    root.mount("", Leaf("root"))
    res, req = child(root, "/nope/deeper")
    assert res.label == "root" and req.postpath == [b"nope", b"deeper"]


def test_mounting_a_path_twice_is_an_error():
    root = Root()
    root.mount("/a/b", Leaf("1"))
    try:
        root.mount("a/b/", Leaf("2"))
    except ValueError as e:
        assert "mounted twice" in str(e)
    else:
        raise AssertionError("expected ValueError")
    assert root.mounted() == ["/a/b"]


def test_mounted_at_finds_a_resource_from_the_request_target_alone():
    root = Root()
    status = Leaf("status")
    root.putChild(b"status", status)
    root.mount("/fedmsg", Leaf("ws"))
    root.mount("/fedmsg/publish", Leaf("publish"))
    root.mount("/@connections", Leaf("push"))
    assert root.mounted_at(b"/fedmsg/publish?token=x").label == "publish"
    assert root.mounted_at(b"/%40connections/abc").label == "push"
    assert root.mounted_at(b"/status") is status
    assert root.mounted_at(b"/nope") is None
    root.mount("", Leaf("root"))
    assert root.mounted_at(b"/nope").label == "root"
