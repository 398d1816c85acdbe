// UnityEngineStub.cs: the few UnityEngine types AffettoClient.cs and examples/unity/BeatLight.cs
// use, as empty stand-ins, so the Unity wrapper (the `#if UNITY_5_3_OR_NEWER` part) and the example
// can be type-checked without Unity:
//
//   mcs -target:library -define:UNITY_5_3_OR_NEWER -out:unity_check.dll ../AffettoClient.cs \
//       UnityEngineStub.cs ../../../examples/unity/BeatLight.cs
//
// Only signatures matter here; nothing in it runs. Never copy this file into a Unity project.

using System;

namespace UnityEngine
{
    public class Object
    {
    }

    public class Component : Object
    {
        public T GetComponent<T>() { return default(T); }
    }

    public class Behaviour : Component
    {
        public bool enabled { get; set; }
    }

    public class MonoBehaviour : Behaviour
    {
    }

    public class Light : Behaviour
    {
        public float intensity { get; set; }
    }

    public static class Debug
    {
        public static void Log(object message, Object context) { }
        public static void LogWarning(object message, Object context) { }
        public static void LogError(object message, Object context) { }
    }

    public static class Mathf
    {
        public static float Clamp01(float value) { return value; }
        public static float MoveTowards(float current, float target, float maxDelta) { return target; }
    }

    public static class Time
    {
        public static float deltaTime { get { return 0f; } }
    }

    [AttributeUsage(AttributeTargets.Class)]
    public sealed class RequireComponent : Attribute
    {
        public RequireComponent(Type type) { }
    }

    [AttributeUsage(AttributeTargets.Class)]
    public sealed class AddComponentMenu : Attribute
    {
        public AddComponentMenu(string menuName) { }
    }

    [AttributeUsage(AttributeTargets.Field)]
    public sealed class TooltipAttribute : Attribute
    {
        public TooltipAttribute(string tooltip) { }
    }
}
