"""The one reader of lwt's YAML and JSON files (lwt.config.files): whatever is wrong with a file is one LwtError
naming it, and a file inside a run folder is never read through a symbolic link."""

from __future__ import annotations

import os

import pytest
from pydantic import BaseModel

from lwt.config.files import file_problem, read_data, read_model
from lwt.errors import LwtError


class Shape(BaseModel):
    stages: list[dict]
    finished: bool


@pytest.mark.parametrize("name, data, fmt, fragment", [
    ("a.json", b"\x80abc", "json", "is not UTF-8 text (byte 0)"),
    ("a.json", b"[" * 100_000, "json", "is nested too deeply to read"),
    ("a.yaml", b"a: " + b"[" * 50_000, "yaml", "is nested too deeply to read"),
    ("a.json", b"{]", "json", "is not valid JSON"),
    ("a.yaml", b"a: [1\n", "yaml", "is not valid YAML"),
    ("a.yaml", b"a: 1\na: 2\n", "yaml", "key 'a' appears twice"),
    ("a.json", b"[1, 2]", "json", "holds list at its top level, not a mapping"),
    ("a.yaml", b"just text\n", "yaml", "holds str at its top level, not a mapping"),
])
def test_bad_bytes_syntax_nesting_or_top_level_are_one_error_naming_the_file(name, data, fmt, fragment, tmp_path):
    (tmp_path / name).write_bytes(data)
    with pytest.raises(LwtError) as e:
        read_data(tmp_path / name, fmt)
    message = str(e.value)
    assert message.startswith(str(tmp_path / name)) and fragment in message and "\n" not in message


def test_a_file_of_the_wrong_shape_names_the_field(tmp_path):
    (tmp_path / "p.json").write_text('{"stages": [{"stage": 1}], "finished": "perhaps"}')
    with pytest.raises(LwtError, match=r"p.json: finished: input should be a valid boolean"):
        read_model(tmp_path / "p.json", Shape)
    (tmp_path / "p.json").write_text('{"stages": [], "finished": true}')
    assert read_model(tmp_path / "p.json", Shape) == Shape(stages=[], finished=True)


def test_a_link_is_followed_only_where_the_user_named_the_file(tmp_path):
    (tmp_path / "real.json").write_text('{"a": 1}')
    (tmp_path / "link.json").symlink_to(tmp_path / "real.json")
    assert read_data(tmp_path / "link.json", "json") == {"a": 1}  # a file the user names may be a link
    with pytest.raises(LwtError, match="link.json: is a symbolic link"):
        read_data(tmp_path / "link.json", "json", follow=False)  # a run folder's own file may not
    assert file_problem(tmp_path / "link.json") == "is a symbolic link, not a plain file"
    assert file_problem(tmp_path / "real.json") is None and file_problem(tmp_path / "missing") is None


def test_a_folder_or_a_named_pipe_is_refused_without_blocking(tmp_path):
    (tmp_path / "dir.json").mkdir()
    with pytest.raises(LwtError, match="dir.json: is a folder, not a file lwt can read"):
        read_data(tmp_path / "dir.json", "json")
    os.mkfifo(tmp_path / "pipe.json")  # opened for reading with no writer: it would block without O_NONBLOCK
    with pytest.raises(LwtError, match="pipe.json: is a named pipe"):
        read_data(tmp_path / "pipe.json", "json")
    assert file_problem(tmp_path / "dir.json", folder=True) is None
