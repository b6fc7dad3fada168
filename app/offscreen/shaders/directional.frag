#version 330 core
// Fragment shader of app/offscreen/kept_scene.py: pyrender's metallic-roughness shading (mesh.frag, pyrender
// 0.1.45) for N_DIRECTIONAL_LIGHTS directional lights and nothing else: no point or spot lights, no shadows, no
// normal/occlusion/emissive/metallic-roughness textures, vertex normals required. The same BRDF terms and
// colour handling; the light loop has a constant bound, which Mesa's llvmpipe compiles to straight code
// (pyrender's three loops over uniform-length light arrays cost several times the whole shading on a CPU).
// Defines set by pyrender: NORMAL_LOC, TEXCOORD_0_LOC, COLOR_0_LOC, HAS_BASE_COLOR_TEX, MAX_DIRECTIONAL_LIGHTS;
// by KeptSceneRenderer: N_DIRECTIONAL_LIGHTS (<= MAX_DIRECTIONAL_LIGHTS).

struct DirectionalLight {
    vec3 color;
    float intensity;
    vec3 direction;
};

struct Material {
    vec3 emissive_factor;
    vec4 base_color_factor;
    float metallic_factor;
    float roughness_factor;
#ifdef HAS_BASE_COLOR_TEX
    sampler2D base_color_texture;
#endif
};

uniform Material material;
uniform DirectionalLight directional_lights[MAX_DIRECTIONAL_LIGHTS];
uniform vec3 cam_pos;
uniform vec3 ambient_light;

in vec3 frag_position;
in vec3 frag_normal;
#ifdef TEXCOORD_0_LOC
in vec2 uv_0;
#endif
#ifdef COLOR_0_LOC
in vec4 color_multiplier;
#endif

out vec4 frag_color;

const float PI = 3.141592653589793;
const float MIN_ROUGHNESS = 0.04;

// IEC 61966-2-1 decoding, as pyrender's srgb_to_linear.
vec3 srgb_to_linear(vec3 srgb)
{
    vec3 upper = step(vec3(0.04045), srgb);
    return mix(srgb / vec3(12.92), pow((srgb + vec3(0.055)) / vec3(1.055), vec3(2.4)), upper);
}

// Outgoing radiance from one light: Lambert diffuse + Cook-Torrance (Schlick Fresnel, Smith-Schlick
// geometry with k = (r + 1)^2 / 8, GGX distribution of roughness^2), pyrender's compute_brdf.
vec3 brdf(vec3 n, vec3 v, vec3 l, float roughness, vec3 f0, vec3 c_diff, vec3 radiance)
{
    vec3 h = normalize(l + v);
    float nl = clamp(dot(n, l), 0.001, 1.0);
    float nv = clamp(abs(dot(n, v)), 0.001, 1.0);
    float nh = clamp(dot(n, h), 0.0, 1.0);
    float vh = clamp(dot(v, h), 0.0, 1.0);

    vec3 F = f0 + (1.0 - f0) * pow(clamp(1.0 - vh, 0.0, 1.0), 5.0);
    float r = roughness + 1.0;
    float k = r * r / 8.0;
    float G = (nv / (nv * (1.0 - k) + k)) * (nl / (nl * (1.0 - k) + k));
    float a = roughness * roughness;
    float a2 = a * a;
    float denom = nh * nh * (a2 - 1.0) + 1.0;
    float D = a2 / (PI * denom * denom);

    vec3 diffuse = (1.0 - F) * c_diff / PI;
    vec3 specular = F * G * D / (4.0 * nl * nv + 0.001);
    return nl * radiance * (diffuse + specular);
}

void main()
{
    float roughness = clamp(material.roughness_factor, MIN_ROUGHNESS, 1.0);
    float metallic = clamp(material.metallic_factor, 0.0, 1.0);

    vec4 base_color = material.base_color_factor;
#ifdef HAS_BASE_COLOR_TEX
    vec4 texel = texture(material.base_color_texture, uv_0);
    base_color = base_color * vec4(srgb_to_linear(texel.rgb), texel.a);
#endif
    vec3 c_diff = mix(vec3(0.0), base_color.rgb * (1.0 - MIN_ROUGHNESS), 1.0 - metallic);
    vec3 f0 = mix(vec3(MIN_ROUGHNESS), base_color.rgb, metallic);

    vec3 n = normalize(frag_normal);
    vec3 v = normalize(cam_pos - frag_position);
    vec4 color = vec4(vec3(0.0), 1.0);
    for (int i = 0; i < N_DIRECTIONAL_LIGHTS; i++) {
        vec3 l = normalize(-1.0 * directional_lights[i].direction);
        vec3 radiance = directional_lights[i].intensity * directional_lights[i].color;
        color.xyz += brdf(n, v, l, roughness, f0, c_diff, radiance);
    }
    color.xyz += base_color.xyz * ambient_light;
    color.xyz += material.emissive_factor * material.emissive_factor;  // pyrender: emissive (no texture) * factor

#ifdef COLOR_0_LOC
    color *= color_multiplier;
#endif
    frag_color = clamp(vec4(pow(color.xyz, vec3(1.0 / 2.2)), color.a * base_color.a), 0.0, 1.0);
}
