#!/usr/bin/python3
"""Writes goldens.json: chat templates rendered by Jinja2 the way Hugging Face
transformers renders them (apply_chat_template(tokenize=False)).

Run from the repository root with Debian's Jinja2 (apt-get install
python3-jinja2):

    /usr/bin/python3 tests/testdata/chat_templates/make_goldens.py

The environment mirrors transformers' _compile_jinja_template:
ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
extensions=[AssistantTracker, loopcontrols]), tojson = json.dumps(ensure_ascii=False, ...),
globals raise_exception and strftime_now; render() receives messages, tools
(None when absent), add_generation_prompt, and bos_token / eos_token when the
tokenizer defines them. Two parts:

  cases    each template family x each test conversation x
           add_generation_prompt false/true: the rendered text, or the error
           (Mistral raises on roles that do not alternate).
  snippets small templates that pin expression, filter, test, loop, scoping
           and whitespace-control semantics.
"""

import datetime
import json
import os
import sys

import jinja2
import jinja2.ext
from jinja2.sandbox import ImmutableSandboxedEnvironment

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
OUT = os.path.join(ROOT, "tests", "testdata", "chat_templates", "goldens.json")


def raise_exception(message):
    raise jinja2.exceptions.TemplateError(message)


def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def strftime_now(format):
    return datetime.datetime.now().strftime(format)


class GenerationTag(jinja2.ext.Extension):
    """transformers' AssistantTracker, less the tracking: {% generation %}
    renders its body unchanged."""

    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(["name:endgeneration"], drop_needle=True)
        return jinja2.nodes.CallBlock(self.call_method("_render", []), [], [], body).set_lineno(lineno)

    def _render(self, caller):
        return caller()


ENV = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                    extensions=[GenerationTag, jinja2.ext.loopcontrols])
ENV.filters["tojson"] = tojson
ENV.globals["raise_exception"] = raise_exception
ENV.globals["strftime_now"] = strftime_now


def token(config, key):
    v = config.get(key)
    if isinstance(v, dict):
        return v["content"]
    return v


def load_family(config_path, template_path=None):
    with open(os.path.join(ROOT, config_path), encoding="utf-8") as f:
        config = json.load(f)
    if template_path is None:
        source = config["chat_template"]
    else:
        with open(os.path.join(ROOT, template_path), encoding="utf-8", newline="") as f:
            source = f.read()
    return {
        "config": config_path,
        "template": template_path or config_path,
        "bos_token": token(config, "bos_token"),
        "eos_token": token(config, "eos_token"),
        "source": source,
    }


FAMILIES = {
    "qwen3": load_family("tests/testdata/tokenizers/qwen3/tokenizer_config.json"),
    "llama3": load_family("tests/testdata/tokenizers/llama3/tokenizer_config.json"),
    # The Mistral fixture's tokenizer_config.json has no chat_template: the
    # template is Mixtral-8x7B-Instruct-v0.1's, kept beside this script.
    "mistral": load_family("tests/testdata/tokenizers/mistral/tokenizer_config.json",
                           "tests/testdata/chat_templates/mistral/chat_template.jinja"),
    "deepseek_v3": load_family("tests/testdata/tokenizers/deepseek_v3/tokenizer_config.json"),
    "tiny_mixtral": load_family("tests/testdata/tiny-mixtral/tokenizer_config.json"),
}

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "description": "City name, e.g. Seoul"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            },
            "required": ["city"],
        },
    },
}

CONVERSATIONS = {
    "single_user": [{"role": "user", "content": "Hello!"}],
    "system_user": [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "What is 2+2?"},
    ],
    "multi_turn": [
        {"role": "user", "content": "Hi, who are you?"},
        {"role": "assistant", "content": "I am an assistant."},
        {"role": "user", "content": "Tell me a joke."},
    ],
    "system_multi_turn": [
        {"role": "system", "content": "Answer briefly."},
        {"role": "user", "content": "Capital of France?"},
        {"role": "assistant", "content": "Paris."},
        {"role": "user", "content": "And of Korea?"},
    ],
    "ends_with_assistant": [
        {"role": "user", "content": "Say hi."},
        {"role": "assistant", "content": "Hi!"},
    ],
    "non_ascii": [
        {"role": "system", "content": "너는 친절한 도우미야 🤖"},
        {"role": "user", "content": "안녕하세요! 😀 Comment ça va? Ünïcödé — “quotes” ‘here’"},
        {"role": "assistant", "content": "잘 지내요 👍 日本語も話せます。"},
        {"role": "user", "content": "이모지 테스트 🎉🎊👨‍👩‍👧 and a zero-width joiner."},
    ],
    "whitespace": [
        {"role": "user", "content": "  padded question \n\n"},
        {"role": "assistant", "content": "\n\n  padded answer  "},
        {"role": "user", "content": "tabs\tand\nnewlines\r\n"},
    ],
    "special_chars": [
        {"role": "user", "content": "Braces {{ not a tag }} {% neither %} and quotes ' \" \\ backslash"},
    ],
    "two_users": [
        {"role": "user", "content": "First."},
        {"role": "user", "content": "Second, without an answer in between."},
    ],
    "empty": [],
    # Qwen3: reasoning in the content (<think>) and as reasoning_content.
    "reasoning": [
        {"role": "user", "content": "What is 3*7?"},
        {"role": "assistant", "content": "<think>\n3 times 7 is 21.\n</think>\n\n21"},
        {"role": "user", "content": "And 4*5?"},
        {"role": "assistant", "content": "20", "reasoning_content": "4 times 5 is 20."},
    ],
    "reasoning_last_turn": [
        {"role": "user", "content": "Think, then answer: 1+1?"},
        {"role": "assistant", "content": "<think>\nsimple\n</think>\n\n2"},
    ],
    # Qwen3 tool use: arguments as an object (tojson) and as a string.
    "tool_calls_qwen": [
        {"role": "system", "content": "You can call tools."},
        {"role": "user", "content": "Weather in Seoul and Busan?"},
        {"role": "assistant", "content": "", "tool_calls": [
            {"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Seoul", "unit": "celsius"}}},
            {"type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Busan\"}"}},
        ]},
        {"role": "tool", "content": "{\"temp\": 21}"},
        {"role": "tool", "content": "{\"temp\": 24}"},
        {"role": "assistant", "content": "Seoul 21°C, Busan 24°C."},
        {"role": "user", "content": "<tool_response>\nnot a real query\n</tool_response>"},
    ],
    # DeepSeek-V3 tool use: content None and string arguments.
    "tool_calls_deepseek": [
        {"role": "system", "content": "You can call tools."},
        {"role": "user", "content": "Weather in Seoul and Busan?"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Seoul\"}"}},
            {"type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Busan\"}"}},
        ]},
        {"role": "tool", "content": "{\"temp\": 21}"},
        {"role": "tool", "content": "{\"temp\": 24}"},
        {"role": "assistant", "content": "Seoul 21°C, Busan 24°C."},
    ],
}

COMMON = ["single_user", "system_user", "multi_turn", "system_multi_turn", "ends_with_assistant", "non_ascii",
          "whitespace", "special_chars", "two_users", "empty"]

# (family, conversation, tools, extra variables)
CASES = [(f, c, None, {}) for f in FAMILIES for c in COMMON]
CASES += [
    ("qwen3", "reasoning", None, {}),
    ("qwen3", "reasoning_last_turn", None, {}),
    ("qwen3", "tool_calls_qwen", [WEATHER_TOOL], {}),
    ("qwen3", "single_user", [WEATHER_TOOL], {}),
    ("qwen3", "system_user", [WEATHER_TOOL], {}),
    ("qwen3", "single_user", None, {"enable_thinking": False}),
    ("qwen3", "multi_turn", None, {"enable_thinking": True}),
    ("deepseek_v3", "tool_calls_deepseek", None, {}),
    ("llama3", "tool_calls_deepseek", None, {}),
    ("mistral", "tool_calls_deepseek", None, {}),
]

# (name, template, context)
SNIPPETS = [
    # whitespace control: trim_blocks, lstrip_blocks, -, +, comments, raw
    ("ws_trim_blocks", "a\n{% if true %}\nb\n{% endif %}\nc", {}),
    ("ws_lstrip_blocks", "  {% if true %}x{% endif %}  \n  y\n\t {% if true %}z\n{% endif %}", {}),
    ("ws_loop_lines", "{% for i in [1, 2] %}\n  {{ i }}\n{% endfor %}\nend", {}),
    ("ws_minus", "a  {%- if true -%}  b  {%- endif -%}  c", {}),
    ("ws_minus_newlines", "a\n\n  {%- if true %}\n b\n  {% endif -%}\n\n c", {}),
    ("ws_variable_minus", "a {{- 'b' -}} c\n{{ 'd' }}\n", {}),
    ("ws_variable_no_lstrip", "x\n    {{ 'y' }}\n    z", {}),
    ("ws_comment", "x\n  {#- comment -#}\n  y\n    {# c #}\nz", {}),
    ("ws_plus", "a\n  {%+ if true %}b{% endif %}\n{% if true +%}\nc{% endif %}", {}),
    ("ws_same_line_tags", "{% if true %}  {% endif %}|{% if true %}x{% endif %} {% if true %}y{% endif %}", {}),
    ("ws_trailing_newline", "line\n", {}),
    ("ws_two_trailing_newlines", "line\n\n", {}),
    ("ws_crlf", "a\r\nb\rc\r\n{% if true %}\r\nd{% endif %}", {}),
    ("ws_raw", "  {% raw %}{{ not evaluated }} {% if %}{% endraw %}\n|{%- raw -%}  x  {%- endraw -%}  |", {}),
    ("ws_unicode_space", "a\n\u3000{% if true %}b{% endif %}\u00a0{%- if true %} c{% endif %}", {}),
    ("ws_set_line", " \t{% set x = 1 %}\n{{ x }}", {}),
    ("ws_after_variable_tag", "{{ 'a' }}\n  {% if true %}b{% endif %}", {}),
    # expressions
    ("expr_arith", "{{ 1 + 2 * 3 }} {{ (1 + 2) * 3 }} {{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % 3 }} {{ -7 % 3 }} "
                   "{{ 2 ** 10 }} {{ 1 / 4 }} {{ 10 / 5 }} {{ 7.5 // 2 }} {{ -7.5 % 2 }} {{ 2 ** -1 }}", {}),
    ("expr_floats", "{{ 1.5 + 1 }} {{ 0.1 + 0.2 }} {{ 1e20 }} {{ 1.5e-7 }} {{ 3.0 }} {{ 2.5 * 2 }} {{ 1e15 }} "
                    "{{ 1e16 }} {{ 0.0001 }} {{ 0.00001 }} {{ 123456789.125 }} {{ 1_000 }} {{ 0x1F }}", {}),
    ("expr_concat", "{{ 'a' ~ 1 ~ none ~ true ~ missing }} {{ 'ab' * 3 }} {{ 2 * 3 ~ 4 }} {{ 'x' 'y' }}", {}),
    ("expr_list_repr", "{{ [1, 'two', none, true, 1.5, {'k': 'v'}, [False]] }}", {}),
    ("expr_dict_repr", "{{ {'a': 1, 'b': [1, 2], 'c': none} }}", {}),
    ("expr_str_repr", "{{ 'it''s' }} {{ \"q'uote\" }} {{ ['it\\'s', 'say \"hi\"', 'both \\' \"', 'tab\\t', 'é😀', '\\x01'] }}", {}),
    ("expr_compare", "{{ 1 < 2 < 3 }} {{ 1 < 2 > 3 }} {{ 'a' < 'b' }} {{ [1, 2] < [1, 3] }} {{ 1 == 1.0 }} "
                     "{{ true == 1 }} {{ 'a' != 'a' }} {{ 2 >= 2 }} {{ none == none }} {{ {'a': 1} == {'a': 1} }}", {}),
    ("expr_in", "{{ 'b' in 'abc' }} {{ 2 in [1, 2] }} {{ 'k' in {'k': 1} }} {{ 'z' not in 'abc' }} {{ 'x' in missing }}", {}),
    ("expr_logic", "{{ not true }} {{ not none }} {{ true and 'x' }} {{ false or 'y' }} {{ 0 or '' }}|{{ none and 1 }} "
                   "{{ not 1 == 2 }} {{ [] or [1] }}", {}),
    ("expr_condexpr", "{{ 'yes' if x else 'no' }} [{{ 'a' if false }}] {{ 1 if false else 2 if true else 3 }}", {"x": 1}),
    ("expr_subscript", "{{ messages[0].content }} {{ messages[0]['role'] }} {{ messages[-1].content }} {{ foo.0 }} "
                       "{{ {'a': {'b': [7]}}.a.b.0 }} [{{ messages[5] }}]",
     {"messages": [{"role": "user", "content": "first"}, {"role": "assistant", "content": "last"}], "foo": [5]}),
    ("expr_slices", "{{ s[1:3] }} {{ s[::-1] }} {{ s[-2:] }} {{ s[:2] }} {{ l[1:] }} {{ l[::2] }} {{ l[::-1] }} "
                    "{{ l[-3:-1] }} {{ l[10:] }} {{ l[:-10] }} {{ l[3:0:-1] }}", {"s": "héllo😀", "l": [1, 2, 3, 4]}),
    ("expr_undefined", "{{ missing }}|{{ missing is defined }}|{{ d.missing is defined }}|{{ d.missing }}|"
                       "{{ missing | default('dflt') }}|{{ missing is undefined }}|{{ d['missing'] is defined }}", {"d": {}}),
    ("expr_precedence", "{{ not x is defined }} {{ x | default(1) + 1 }} {{ -2 | abs }} {{ 'a' ~ 'b' | upper }} "
                        "{{ l | length - 1 }} {{ -l | length }}", {"l": [1, 2]}),
    ("expr_escapes", "{{ 'tab\\there' }}|{{ '\\u00e9\\x41\\101' }}|{{ 'a\\\\b' }}|{{ \"nl\\nx\" }}|{{ '\\d' }}", {}),
    ("expr_dict_methods", "{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}{{ d.keys() | list }}{{ d.values() | list }}"
                          "{{ d.get('z') }}{{ d.get('q', 'none') }}{{ d.get('q') }}", {"d": {"z": 1, "a": 2}}),
    ("expr_dict_literal_order", "{{ {'b': 1, 'a': 2, 'b': 3} | tojson }}", {}),
    ("expr_list_add", "{{ [1] + [2, 3] }} {{ ([1, 2] + ['x'])[-1] }}", {}),
    ("expr_error_undefined_attr", "{{ missing.attr }}", {}),
    ("expr_error_none_add", "{{ none + 1 }}", {}),
    ("expr_error_str_int", "{{ 'a' + 1 }}", {}),
    ("expr_error_div_zero", "{{ 1 / 0 }}", {}),
    ("expr_error_concat_precedence", "{{ 1 + 2 ~ 3 }}", {}),
    ("expr_error_compare_types", "{{ 1 < 'a' }}", {}),
    ("expr_error_iterate_none", "{% for x in none %}{% endfor %}", {}),
    ("expr_error_in_string", "{{ 1 in 'abc' }}", {}),
    ("expr_error_nested_undefined", "{{ d.a.b }}", {"d": {}}),
    ("expr_error_list_out_of_range_attr", "{{ l[3].role }}", {"l": []}),
    # filters
    ("filter_trim", "[{{ '  x  ' | trim }}|{{ none | trim }}|{{ 'xxhixx' | trim('x') }}|{{ '\u3000y\u00a0\n' | trim }}]", {}),
    ("filter_length", "{{ [1, 2, 3] | length }} {{ 'héllo' | length }} {{ {'a': 1} | length }} {{ missing | length }} "
                      "{{ 'abc' | count }}", {}),
    ("filter_tojson", "{{ x | tojson }}",
     {"x": {"b": 1, "a": [1.5, "é\"\n\u0001\\/", True, None, 10000000000000000.0, 3], "c": {"nested": "😀"}, "e": {}, "f": []}}),
    ("filter_tojson_indent", "{{ x | tojson(indent=2) }}", {"x": {"b": [1, {"c": None}], "a": {}, "d": []}}),
    ("filter_tojson_sort_keys", "{{ x | tojson(sort_keys=true) }}", {"x": {"b": 1, "a": {"d": 2, "c": 3}}}),
    ("filter_tojson_separators", "{{ x | tojson(separators=(',', ':')) }}", {"x": {"b": [1, 2], "a": "x"}}),
    ("filter_tojson_scalars", "{{ 'é' | tojson }} {{ 'a\"b' | tojson }} {{ 1.0 | tojson }} {{ none | tojson }} "
                              "{{ true | tojson }} {{ 12 | tojson }} {{ '<&>' | tojson }}", {}),
    ("filter_case", "{{ 'Hello' | upper }} {{ 'Hello' | lower }} {{ 'hello world' | title }} {{ 'hELLO wORLD' | capitalize }} "
                    "{{ 'éa' | upper }}", {}),
    ("filter_replace", "{{ 'a-b-c' | replace('-', '+') }} {{ 'a-b-c' | replace('-', '+', 1) }} {{ 5 | replace('5', 'five') }}", {}),
    ("filter_join", "{{ ['a', 'b'] | join(', ') }} {{ [1, 2] | join }} {{ users | join(', ', attribute='name') }}",
     {"users": [{"name": "a"}, {"name": "b"}]}),
    ("filter_first_last", "{{ [3, 1, 2] | first }} {{ [3, 1, 2] | last }} {{ 'abc' | first }} [{{ [] | first }}]", {}),
    ("filter_items", "{% for k, v in d | items %}{{ k }}={{ v }};{% endfor %}{{ missing | items | list }}", {"d": {"z": 1, "a": 2}}),
    ("filter_string", "{{ 42 | string }} {{ none | string | length }} {{ [1] | string }}", {}),
    ("filter_select", "{{ users | selectattr('active') | map(attribute='name') | list }} "
                      "{{ users | rejectattr('active') | list | length }} "
                      "{{ users | selectattr('name', 'equalto', 'b') | list }} "
                      "{{ [1, 2, 3, 4] | select('odd') | list }} {{ [1, 2, 3, 4] | reject('odd') | list }} "
                      "{{ ['a', 'b'] | map('upper') | join }}",
     {"users": [{"name": "a", "active": True}, {"name": "b", "active": False}, {"name": "c", "active": True}]}),
    ("filter_sort_unique", "{{ [3, 1, 2] | sort }} {{ [3, 1, 2] | sort(reverse=true) }} {{ ['b', 'A', 'c'] | sort }} "
                           "{{ [1, 1, 2] | unique | list }} {{ users | sort(attribute='n') | map(attribute='n') | list }}",
     {"users": [{"n": 2}, {"n": 1}]}),
    ("filter_numbers", "{{ '1' | int + 1 }} {{ 'x' | int }} {{ 3.7 | int }} {{ '2.5' | float }} {{ -3 | abs }} "
                       "{{ 2.567 | round(2) }} {{ 2.5 | round }} {{ 2.1 | round(method='ceil') }}", {}),
    ("filter_indent", "{{ 'a\nb\n\nc' | indent(2) }}|{{ 'a\nb' | indent(2, true) }}|{{ 'a\n\nb' | indent(first=true, blank=true) }}", {}),
    ("filter_reverse", "{{ [1, 2, 3] | reverse | list }} {{ 'abc' | reverse }}", {}),
    ("filter_default_boolean", "[{{ x | default('d', true) }}] [{{ x | default('d') }}] [{{ none | d('n') }}]", {"x": ""}),
    ("filter_list", "{{ 'ab' | list }} {{ {'k': 1} | list }}", {}),
    # tests
    ("tests", "{{ 1 is number }} {{ 'a' is string }} {{ none is none }} {{ x is defined }} {{ 1 is integer }} "
              "{{ 1.0 is float }} {{ true is boolean }} {{ {} is mapping }} {{ [] is sequence }} {{ 4 is even }} "
              "{{ 3 is odd }} {{ 9 is divisibleby 3 }} {{ false is false }} {{ 0 is false }} {{ true is true }} "
              "{{ 'a' is in 'abc' }} {{ 1 is eq 1 }} {{ 'ABC' is upper }} {{ 'abc' is lower }} {{ none is not none }} "
              "{{ true is sameas true }} {{ 1 is sameas true }} {{ x is iterable }} {{ 2 is gt 1 }} {{ 'a' is ne 'b' }} "
              "{{ none is string }} {{ true is number }}", {"x": [1]}),
    # string methods
    ("str_methods", "{{ s.startswith('he') }} {{ s.endswith('lo') }} {{ s.startswith(('x', 'h')) }} {{ s.upper() }} "
                    "{{ s.split('l') }} {{ ' a  b '.split() }} {{ 'a,b,c'.split(',', 1) }} {{ 'a,b,c'.rsplit(',', 1) }} "
                    "{{ '\\n\\nx\\n'.strip('\\n') }} [{{ '  x '.lstrip() }}|{{ '  x '.rstrip() }}] {{ s.replace('l', 'L') }} "
                    "{{ s.find('l') }} {{ s.rfind('l') }} {{ s.count('l') }} {{ '-'.join(['a', 'b']) }} "
                    "{{ 'a\\nb\\r\\nc'.splitlines() }} {{ 'x y'.title() }} {{ '12'.isdigit() }} {{ ' '.isspace() }} "
                    "{{ 'AB'.isupper() }} {{ 'hello'.capitalize() }} {{ 'a b'.split(' ') }} {{ ''.split() }} {{ ''.split(',') }}",
     {"s": "hello"}),
    ("str_think_split", "{{ c.split('</think>')[-1].lstrip('\\n') }}|"
                        "{{ c.split('</think>')[0].rstrip('\\n').split('<think>')[-1].lstrip('\\n') }}|"
                        "{{ '</think>' in c }}", {"c": "<think>\nr\n</think>\n\nanswer"}),
    # loops
    ("loop_vars", "{% for x in l %}{{ loop.index }}/{{ loop.index0 }}/{{ loop.revindex }}/{{ loop.revindex0 }}/"
                  "{{ loop.first }}/{{ loop.last }}/{{ loop.length }} {% endfor %}", {"l": ["a", "b", "c"]}),
    ("loop_filter", "{% for x in l if x is odd %}{{ loop.index }}:{{ x }}{% if not loop.last %},{% endif %}{% endfor %}",
     {"l": [1, 2, 3, 4, 5]}),
    ("loop_else", "{% for x in [] %}a{% else %}empty{% endfor %}|{% for x in [1] %}one{% else %}no{% endfor %}", {}),
    ("loop_controls", "{% for x in l %}{% if x == 2 %}{% continue %}{% endif %}{% if x == 4 %}{% break %}{% endif %}"
                      "{{ x }}{% endfor %}", {"l": [1, 2, 3, 4, 5]}),
    ("loop_nested", "{% for a in [1, 2] %}{% for b in 'xy' %}{{ a }}{{ b }}{{ loop.index }}{{ loop.depth }} {% endfor %}"
                    "{{ loop.index }}{% endfor %}", {}),
    ("loop_prev_next_cycle", "{% for x in l %}{{ loop.previtem | default('-') }}{{ loop.nextitem | default('-') }} "
                             "{{ loop.cycle('odd', 'even') }};{% endfor %}", {"l": [1, 2, 3]}),
    ("loop_string_chars", "{% for c in 'héllo😀' %}[{{ c }}]{% endfor %}", {}),
    ("loop_dict_keys", "{% for k in {'b': 1, 'a': 2} %}{{ k }}{% endfor %}", {}),
    ("loop_unpack", "{% for a, b in [[1, 2], [3, 4]] %}{{ a + b }};{% endfor %}", {}),
    ("loop_reversed_messages", "{% for m in messages[::-1] %}{{ (messages | length - 1) - loop.index0 }}:{{ m }};{% endfor %}",
     {"messages": ["a", "b", "c"]}),
    # scoping, set, namespace
    ("scope_loop_set", "{% set x = 1 %}{% for i in [1, 2] %}{{ x }}{% set x = x + 10 %}{{ x }};{% endfor %}{{ x }}", {}),
    ("scope_if_set", "{% if true %}{% set y = 'set-in-if' %}{% endif %}{{ y }}", {}),
    ("scope_loop_var_leak", "{% for i in [1, 2] %}{% set inner = i %}{% endfor %}[{{ i }}{{ inner }}]", {}),
    ("scope_namespace", "{% set ns = namespace(count=0, items='') %}{% for i in range(3) %}{% set ns.count = ns.count + i %}"
                        "{% set ns.items = ns.items ~ i %}{% endfor %}{{ ns.count }} {{ ns.items }} {{ ns.missing is defined }}", {}),
    ("scope_namespace_new_attr", "{% set ns = namespace() %}{% set ns.found = true %}{{ ns.found }}", {}),
    ("scope_tuple_set", "{% set a, b = [1, 2] %}{{ b }}{{ a }}", {}),
    ("scope_block_set", "{% set block %}  inner {{ 1 + 1 }}  {% endset %}[{{ block }}]{% set up | upper %}abc{% endset %}{{ up }}", {}),
    ("scope_override_variable", "{% if not add_generation_prompt is defined %}{% set add_generation_prompt = false %}{% endif %}"
                                "{{ add_generation_prompt }}", {}),
    ("globals_range_dict", "{{ range(3) | list }} {{ range(1, 7, 2) | list }} {{ range(5, 0, -2) | list }} {{ dict(a=1, b='x') }}", {}),
    ("raise_exception", "ok{% if true %}{{ raise_exception('custom failure: ' ~ 42) }}{% endif %}", {}),
    ("generation_tag", "a{% generation %} b {% endgeneration %}c", {}),
]


def render(source, context):
    try:
        return {"expected": ENV.from_string(source).render(**context)}
    except jinja2.exceptions.TemplateError as e:
        # raise_exception() raises the TemplateError base class itself.
        kind = "raise_exception" if type(e) is jinja2.exceptions.TemplateError else type(e).__name__
        return {"error": str(e), "error_type": kind}
    except Exception as e:  # Python errors inside the template (TypeError, ...)
        return {"error": str(e), "error_type": type(e).__name__}


def main():
    cases = []
    for family, conversation, tools, extra in CASES:
        fam = FAMILIES[family]
        for add_generation_prompt in (False, True):
            context = {"messages": CONVERSATIONS[conversation], "tools": tools,
                       "add_generation_prompt": add_generation_prompt}
            if fam["bos_token"] is not None:
                context["bos_token"] = fam["bos_token"]
            if fam["eos_token"] is not None:
                context["eos_token"] = fam["eos_token"]
            context.update(extra)
            case = {"family": family, "conversation": conversation, "add_generation_prompt": add_generation_prompt,
                    "tools": tools, "extra_variables": extra}
            case.update(render(fam["source"], context))
            cases.append(case)
    snippets = []
    for name, source, context in SNIPPETS:
        snippet = {"name": name, "template": source, "context": context}
        snippet.update(render(source, context))
        snippets.append(snippet)
    goldens = {
        "generator": "tests/testdata/chat_templates/make_goldens.py",
        "jinja2_version": jinja2.__version__,
        "python_version": sys.version.split()[0],
        "families": {name: {k: v for k, v in fam.items() if k != "source"} for name, fam in FAMILIES.items()},
        "conversations": CONVERSATIONS,
        "cases": cases,
        "snippets": snippets,
    }
    with open(OUT, "w", encoding="utf-8") as f:
        json.dump(goldens, f, ensure_ascii=False, indent=1)
        f.write("\n")
    n_err = sum(1 for c in cases if "error" in c)
    s_err = sum(1 for s in snippets if "error" in s)
    print(f"{OUT}: {len(cases)} cases ({n_err} errors), {len(snippets)} snippets ({s_err} errors)")


if __name__ == "__main__":
    main()
