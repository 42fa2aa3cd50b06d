/**
 * Built-in chat templates: the real Jinja source each model family publishes, verbatim, and
 * chatml_tools, the project's own ChatML with tool calls (byte-identical copies live in
 * test/fixtures/templates/*.jinja, where the tests render them with Python jinja2 as
 * transformers does and compare).
 * Kept as string constants, not .jinja files, so the same import works in the browser,
 * under Vite, in Node (tsx) and in vitest.
 */
export interface BuiltinTemplateSource { source: string; bosToken: string; eosToken: string; origin: string }

/** ChatML as SmolLM and TRL setup_chat_format write it (Qwen2.5 uses the same turn format, plus a default system prompt): <|im_start|>role\ncontent<|im_end|>\n. */
export const CHATML: BuiltinTemplateSource = {
  bosToken: "<|im_start|>",
  eosToken: "<|im_end|>",
  origin: "ChatML as SmolLM and TRL setup_chat_format write it (Qwen2.5 uses the same turn format, plus a default system prompt): <|im_start|>role\\ncontent<|im_end|>\\n.",
  source:
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}",
};

/** ChatML with tool use (this project's own): identical to chatml on conversations without tools; with `tools`, a system turn lists their schemas as JSON (after the system prompt, if any), an assistant turn writes each call as <tool_call>\n{"name": ..., "arguments": ...}\n</tool_call> (the Qwen2.5 / Hermes form) and tool results are `tool` turns. */
export const CHATML_TOOLS: BuiltinTemplateSource = {
  bosToken: "<|im_start|>",
  eosToken: "<|im_end|>",
  origin: "ChatML with tool use (this project's own): identical to chatml on conversations without tools; with `tools`, a system turn lists their schemas as JSON (after the system prompt, if any), an assistant turn writes each call as <tool_call>\\n{\"name\": ..., \"arguments\": ...}\\n</tool_call> (the Qwen2.5 / Hermes form) and tool results are `tool` turns.",
  source:
    "{%- if tools %}\n{{- '<|im_start|>system\\n' }}\n{%- if messages[0].role == 'system' %}\n{{- messages[0].content + '\\n\\n' }}\n{%- endif %}\n{{- '# Tools\\n<tools>\\n' }}\n{%- for tool in tools %}\n{{- (tool.function if tool.function is defined else tool) | tojson + '\\n' }}\n{%- endfor %}\n{{- '</tools><|im_end|>\\n' }}\n{%- endif %}\n{%- for message in messages %}\n{%- if not (tools and loop.first and message.role == 'system') %}\n{{- '<|im_start|>' + message.role + '\\n' + message.content }}\n{%- if message.tool_calls %}\n{%- for call in message.tool_calls %}\n{{- ('\\n' if message.content or not loop.first else '') + '<tool_call>\\n{\"name\": \"' + call.function.name + '\", \"arguments\": ' + call.function.arguments | tojson + '}\\n</tool_call>' }}\n{%- endfor %}\n{%- endif %}\n{{- '<|im_end|>\\n' }}\n{%- endif %}\n{%- endfor %}\n{%- if add_generation_prompt %}\n{{- '<|im_start|>assistant\\n' }}\n{%- endif %}",
};

/** HuggingFaceH4/zephyr-7b-beta (alignment-handbook recipes/zephyr-7b-beta). */
export const ZEPHYR: BuiltinTemplateSource = {
  bosToken: "<s>",
  eosToken: "</s>",
  origin: "HuggingFaceH4/zephyr-7b-beta (alignment-handbook recipes/zephyr-7b-beta).",
  source:
    "{% for message in messages %}\n{% if message['role'] == 'user' %}\n{{ '<|user|>\n' + message['content'] + eos_token }}\n{% elif message['role'] == 'system' %}\n{{ '<|system|>\n' + message['content'] + eos_token }}\n{% elif message['role'] == 'assistant' %}\n{{ '<|assistant|>\n'  + message['content'] + eos_token }}\n{% endif %}\n{% if loop.last and add_generation_prompt %}\n{{ '<|assistant|>' }}\n{% endif %}\n{% endfor %}",
};

/** allenai/Llama-3.1-Tulu-3-8B (open-instruct dataset_transformation.py). */
export const TULU: BuiltinTemplateSource = {
  bosToken: "<|begin_of_text|>",
  eosToken: "<|end_of_text|>",
  origin: "allenai/Llama-3.1-Tulu-3-8B (open-instruct dataset_transformation.py).",
  source:
    "{% for message in messages %}{% if message['role'] == 'system' %}{{ '<|system|>\n' + message['content'] + '\n' }}{% elif message['role'] == 'user' %}{{ '<|user|>\n' + message['content'] + '\n' }}{% elif message['role'] == 'assistant' %}{% if not loop.last %}{{ '<|assistant|>\n'  + message['content'] + eos_token + '\n' }}{% else %}{{ '<|assistant|>\n'  + message['content'] + eos_token }}{% endif %}{% endif %}{% if loop.last and add_generation_prompt %}{{ '<|assistant|>\n' }}{% endif %}{% endfor %}",
};

/** meta-llama/Meta-Llama-3-8B-Instruct and -70B-Instruct (tokenizer_config.json). Llama 3.2 adds a dated system header; this one renders the same text every day. */
export const LLAMA3: BuiltinTemplateSource = {
  bosToken: "<|begin_of_text|>",
  eosToken: "<|eot_id|>",
  origin: "meta-llama/Meta-Llama-3-8B-Instruct and -70B-Instruct (tokenizer_config.json). Llama 3.2 adds a dated system header; this one renders the same text every day.",
  source:
    "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}",
};

/** mistralai/Mistral-7B-Instruct-v0.3. Moves the system prompt into the LAST user turn and raises on non-alternating roles. */
export const MISTRAL: BuiltinTemplateSource = {
  bosToken: "<s>",
  eosToken: "</s>",
  origin: "mistralai/Mistral-7B-Instruct-v0.3. Moves the system prompt into the LAST user turn and raises on non-alternating roles.",
  source:
    "{%- if messages[0][\"role\"] == \"system\" %}\n    {%- set system_message = messages[0][\"content\"] %}\n    {%- set loop_messages = messages[1:] %}\n{%- else %}\n    {%- set loop_messages = messages %}\n{%- endif %}\n{%- if not tools is defined %}\n    {%- set tools = none %}\n{%- endif %}\n{%- set user_messages = loop_messages | selectattr(\"role\", \"equalto\", \"user\") | list %}\n\n{#- This block checks for alternating user/assistant messages, skipping tool calling messages #}\n{%- set ns = namespace() %}\n{%- set ns.index = 0 %}\n{%- for message in loop_messages %}\n    {%- if not (message.role == \"tool\" or message.role == \"tool_results\" or (message.tool_calls is defined and message.tool_calls is not none)) %}\n        {%- if (message[\"role\"] == \"user\") != (ns.index % 2 == 0) %}\n            {{- raise_exception(\"After the optional system message, conversation roles must alternate user/assistant/user/assistant/...\") }}\n        {%- endif %}\n        {%- set ns.index = ns.index + 1 %}\n    {%- endif %}\n{%- endfor %}\n\n{{- bos_token }}\n{%- for message in loop_messages %}\n    {%- if message[\"role\"] == \"user\" %}\n        {%- if tools is not none and (message == user_messages[-1]) %}\n            {{- \"[AVAILABLE_TOOLS] [\" }}\n            {%- for tool in tools %}\n                {%- set tool = tool.function %}\n                {{- '{\"type\": \"function\", \"function\": {' }}\n                {%- for key, val in tool.items() if key != \"return\" %}\n                    {%- if val is string %}\n                        {{- '\"' + key + '\": \"' + val + '\"' }}\n                    {%- else %}\n                        {{- '\"' + key + '\": ' + val|tojson }}\n                    {%- endif %}\n                    {%- if not loop.last %}\n                        {{- \", \" }}\n                    {%- endif %}\n                {%- endfor %}\n                {{- \"}}\" }}\n                {%- if not loop.last %}\n                    {{- \", \" }}\n                {%- else %}\n                    {{- \"]\" }}\n                {%- endif %}\n            {%- endfor %}\n            {{- \"[/AVAILABLE_TOOLS]\" }}\n            {%- endif %}\n        {%- if loop.last and system_message is defined %}\n            {{- \"[INST] \" + system_message + \"\\n\\n\" + message[\"content\"] + \"[/INST]\" }}\n        {%- else %}\n            {{- \"[INST] \" + message[\"content\"] + \"[/INST]\" }}\n        {%- endif %}\n    {%- elif message.tool_calls is defined and message.tool_calls is not none %}\n        {{- \"[TOOL_CALLS] [\" }}\n        {%- for tool_call in message.tool_calls %}\n            {%- set out = tool_call.function|tojson %}\n            {{- out[:-1] }}\n            {%- if not tool_call.id is defined or tool_call.id|length != 9 %}\n                {{- raise_exception(\"Tool call IDs should be alphanumeric strings with length 9!\") }}\n            {%- endif %}\n            {{- ', \"id\": \"' + tool_call.id + '\"}' }}\n            {%- if not loop.last %}\n                {{- \", \" }}\n            {%- else %}\n                {{- \"]\" + eos_token }}\n            {%- endif %}\n        {%- endfor %}\n    {%- elif message[\"role\"] == \"assistant\" %}\n        {{- \" \" + message[\"content\"]|trim + eos_token}}\n    {%- elif message[\"role\"] == \"tool_results\" or message[\"role\"] == \"tool\" %}\n        {%- if message.content is defined and message.content.content is defined %}\n            {%- set content = message.content.content %}\n        {%- else %}\n            {%- set content = message.content %}\n        {%- endif %}\n        {{- '[TOOL_RESULTS] {\"content\": ' + content|string + \", \" }}\n        {%- if not message.tool_call_id is defined or message.tool_call_id|length != 9 %}\n            {{- raise_exception(\"Tool call IDs should be alphanumeric strings with length 9!\") }}\n        {%- endif %}\n        {{- '\"call_id\": \"' + message.tool_call_id + '\"}[/TOOL_RESULTS]' }}\n    {%- else %}\n        {{- raise_exception(\"Only user and assistant roles are supported, with the exception of an initial optional system message!\") }}\n    {%- endif %}\n{%- endfor %}\n",
};

/** google/gemma-3 *-it (TRL chat_templates/gemma3.jinja). Folds the system prompt into the first user turn; the end-of-turn marker is <end_of_turn>, not eos. */
export const GEMMA: BuiltinTemplateSource = {
  bosToken: "<bos>",
  eosToken: "<eos>",
  origin: "google/gemma-3 *-it (TRL chat_templates/gemma3.jinja). Folds the system prompt into the first user turn; the end-of-turn marker is <end_of_turn>, not eos.",
  source:
    "{{ bos_token }}\n{%- if messages[0]['role'] == 'system' -%}\n    {%- if messages[0]['content'] is string -%}\n        {%- set first_user_prefix = messages[0]['content'] + '\n\n' -%}\n    {%- else -%}\n        {%- set first_user_prefix = messages[0]['content'][0]['text'] + '\n\n' -%}\n    {%- endif -%}\n    {%- set loop_messages = messages[1:] -%}\n{%- else -%}\n    {%- set first_user_prefix = \"\" -%}\n    {%- set loop_messages = messages -%}\n{%- endif -%}\n{%- for message in loop_messages -%}\n    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}\n        {{ raise_exception(\"Conversation roles must alternate user/assistant/user/assistant/...\") }}\n    {%- endif -%}\n    {%- if (message['role'] == 'assistant') -%}\n        {%- set role = \"model\" -%}\n    {%- else -%}\n        {%- set role = message['role'] -%}\n    {%- endif -%}\n    {{ '<start_of_turn>' + role + '\n' + (first_user_prefix if loop.first else \"\") }}\n    {%- if message['content'] is string -%}\n        {{ message['content'] | trim }}\n    {%- elif message['content'] is iterable -%}\n        {%- for item in message['content'] -%}\n            {%- if item['type'] == 'image' -%}\n                {{ '<start_of_image>' }}\n            {%- elif item['type'] == 'text' -%}\n                {{ item['text'] | trim }}\n            {%- endif -%}\n        {%- endfor -%}\n    {%- else -%}\n        {{ raise_exception(\"Invalid content type\") }}\n    {%- endif -%}\n    {{ '<end_of_turn>\n' }}\n{%- endfor -%}\n{%- if add_generation_prompt -%}\n    {{'<start_of_turn>model\n'}}\n{%- endif -%}\n",
};

/** microsoft/Phi-3.5-mini-instruct (TRL chat_templates/phi3_5.jinja). Ends every conversation without a generation prompt with eos. */
export const PHI3: BuiltinTemplateSource = {
  bosToken: "<s>",
  eosToken: "<|endoftext|>",
  origin: "microsoft/Phi-3.5-mini-instruct (TRL chat_templates/phi3_5.jinja). Ends every conversation without a generation prompt with eos.",
  source:
    "{% for message in messages %}{% if message['role'] == 'system' and message['content'] %}{{'<|system|>\n' + message['content'] + '<|end|>\n'}}{% elif message['role'] == 'user' %}{{'<|user|>\n' + message['content'] + '<|end|>\n'}}{% elif message['role'] == 'assistant' %}{{'<|assistant|>\n' + message['content'] + '<|end|>\n'}}{% endif %}{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% else %}{{ eos_token }}{% endif %}",
};

